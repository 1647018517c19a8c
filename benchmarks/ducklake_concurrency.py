"""A writer and a reader in two processes on one DuckLake with its catalog in SQLite (the
``ducklake`` warehouse's layout, see mkt_platform/warehouse.py), and, for contrast, two
writers in one process: prints the transactions, reads and errors of each.

The writer replaces one of five keys' 1,000 rows per transaction (delete then insert, as
dbt's incremental delete+insert does); the reader counts the table in a loop, read-only.

    .venv/bin/python benchmarks/ducklake_concurrency.py [--transactions 40]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import tempfile
import threading
import time
from pathlib import Path

import duckdb

from mkt_platform.lib.duckdb_extensions import load_offline


def connect(folder: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    load_offline(con, ("ducklake", "sqlite_scanner"))
    options = f"DATA_PATH '{folder}/files/'" + (", READ_ONLY" if read_only else "")
    con.execute(f"ATTACH 'ducklake:sqlite:{folder}/catalog.sqlite' AS w ({options})")
    return con


def write(folder: Path, transactions: int, first_key: int, out) -> None:
    con = connect(folder)
    errors: list[str] = []
    started = time.monotonic()
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


def read(folder: Path, seconds: float, out) -> None:
    con = connect(folder, read_only=True)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        con = connect(folder)
        con.execute("create table w.t (k int, v bigint)")
        con.close()
        out: mp.Queue = mp.Queue()
        procs = [
            mp.Process(target=read, args=(folder, 8.0, out)),
            mp.Process(target=write, args=(folder, args.transactions, 0, out)),
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        print("two processes, a writer and a reader:")
        for _ in procs:
            who, n, seconds, errors = out.get()
            print(
                f"  {who}: {n} {'transactions' if who == 'writer' else 'reads'} in "
                f"{seconds:.1f} s, {len(errors)} errors {sorted(set(errors))[:2]}"
            )

        # Two writers at once (dbt with threads: 2), on disjoint keys, 5 transactions each:
        # SQLite's busy waits make each failure slow.
        import queue

        local: queue.Queue = queue.Queue()
        threads = [threading.Thread(target=write, args=(folder, 5, k, local)) for k in (100, 200)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print("two writers in one process, disjoint keys:")
        for _ in threads:
            who, n, seconds, errors = local.get()
            print(
                f"  {who}: {n} transactions in {seconds:.1f} s, {len(errors)} errors "
                f"{sorted(set(errors))[:2]}"
            )


if __name__ == "__main__":
    main()
