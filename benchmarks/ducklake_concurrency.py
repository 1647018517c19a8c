"""A writer and a reader in two processes on one DuckLake, and two writers at once: prints
the transactions, reads and errors of each. The catalog is a SQLite file (the ``ducklake``
warehouse's default, see mkt_platform/warehouse.py); with ``--duckdb-catalog``, a DuckDB
file (DuckLake's own default, measured to choose against it); or, with ``--postgres DSN``, a
fresh PostgreSQL database created for the run on that server and dropped after it (libpq
conninfo without a database name, e.g. ``host=127.0.0.1 user=postgres``).

The writer replaces one of five keys' 1,000 rows per transaction (delete then insert, as
dbt's incremental delete+insert does); the reader counts the table in a loop, read-only.

    .venv/bin/python benchmarks/ducklake_concurrency.py [--transactions 40]
        [--postgres DSN | --duckdb-catalog]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import queue
import tempfile
import threading
import time
from pathlib import Path

import duckdb

from mkt_platform.lib.duckdb_extensions import connect as connect_duckdb
from mkt_platform.lib.duckdb_extensions import load_offline


def connect(folder: Path, catalog: str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """The DuckLake of ``catalog`` (``postgres:<conninfo>``, ``"duckdb"`` for a DuckDB file or
    ``""`` for a SQLite file in ``folder``) attached as ``w``, its data under ``folder``."""
    con = connect_duckdb()
    load_offline(con, ("ducklake", "sqlite_scanner", "postgres_scanner"))
    options = f"DATA_PATH '{folder}/files/'" + (", READ_ONLY" if read_only else "")
    if catalog == "duckdb":
        catalog = f"{folder}/catalog.ducklake"
    catalog = catalog or f"sqlite:{folder}/catalog.sqlite"
    con.execute(f"ATTACH 'ducklake:{catalog}' AS w ({options})")
    return con


def attached(who: str, folder: Path, catalog: str, out, read_only: bool = False):
    """:func:`connect`, or ``None`` after putting the refusal on ``out`` (a DuckDB-file catalog
    that another process holds cannot be attached at all)."""
    try:
        return connect(folder, catalog, read_only)
    except duckdb.Error as exc:
        out.put((who, 0, 0.0, ["attach refused: " + str(exc).splitlines()[0][-150:]]))
        return None


def write(folder: Path, catalog: str, transactions: int, first_key: int, out) -> None:
    started = time.monotonic()
    con = attached("writer", folder, catalog, out)
    if con is None:
        return
    errors: list[str] = []
    for i in range(transactions):
        key = first_key + i % 5
        try:
            con.execute("begin")
            con.execute("delete from w.t where k = ?", [key])
            con.execute("insert into w.t select ?, range from range(1000)", [key])
            con.execute("commit")
        except duckdb.Error as exc:
            errors.append(str(exc).splitlines()[0][:100])
            with contextlib.suppress(duckdb.Error):  # a failed commit ended it already
                con.execute("rollback")
    out.put(("writer", transactions, time.monotonic() - started, errors))


def read(folder: Path, catalog: str, seconds: float, out) -> None:
    con = attached("reader", folder, catalog, out, read_only=True)
    if con is None:
        return
    errors: list[str] = []
    reads = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            con.execute("select count(*) from w.t").fetchone()
            reads += 1
        except duckdb.Error as exc:
            errors.append(str(exc).splitlines()[0][:100])
    out.put(("reader", reads, time.monotonic() - started, errors))


@contextlib.contextmanager
def catalog_database(dsn: str | None):
    """``postgres:<dsn> dbname=<fresh>`` for a database created now and dropped after, or
    ``""`` (the SQLite file) without a DSN."""
    if not dsn:
        yield ""
        return
    import os

    import psycopg2

    name = f"ducklake_bench_{os.getpid()}"
    admin = psycopg2.connect(f"{dsn} dbname=postgres")
    admin.autocommit = True
    admin.cursor().execute(f"create database {name}")
    try:
        yield f"postgres:{dsn} dbname={name}"
    finally:
        admin.cursor().execute(f"drop database {name} with (force)")
        admin.close()


def run(title: str, workers: list, out) -> None:
    """Start ``workers`` (processes or threads), wait for them, and print what each put on
    ``out``."""
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print(title)
    for _ in workers:
        who, n, seconds, errors = out.get()
        print(
            f"  {who}: {n} {'transactions' if who == 'writer' else 'reads'} in "
            f"{seconds:.1f} s, {len(errors)} errors {sorted(set(errors))[:2]}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=40)
    parser.add_argument("--postgres", metavar="DSN", help="libpq conninfo of a server")
    parser.add_argument("--duckdb-catalog", action="store_true", help="a DuckDB file catalog")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, catalog_database(args.postgres) as catalog:
        catalog = "duckdb" if args.duckdb_catalog else catalog
        print(f"catalog: {catalog or 'SQLite file'}")
        folder = Path(tmp)
        with connect(folder, catalog) as con:
            con.execute("create table w.t (k int, v bigint)")
        out: mp.Queue = mp.Queue()
        run(
            "two processes, a writer and a reader:",
            [
                mp.Process(target=read, args=(folder, catalog, 8.0, out)),
                mp.Process(target=write, args=(folder, catalog, args.transactions, 0, out)),
            ],
            out,
        )
        # Two writers at once (dbt with threads: 2), on disjoint keys; on SQLite 5 transactions
        # each, since its busy waits make each failure slow.
        writes = args.transactions if catalog.startswith("postgres") else 5
        local: queue.Queue = queue.Queue()
        run(
            "two writers in one process, disjoint keys:",
            [
                threading.Thread(target=write, args=(folder, catalog, writes, key, local))
                for key in (100, 200)
            ],
            local,
        )


if __name__ == "__main__":
    main()
