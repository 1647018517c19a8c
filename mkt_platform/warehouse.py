"""The warehouse dbt builds (schemas ``staging``, ``intermediate``, ``marts``), for its
readers: the CLI's summary, the charts, the report, a notebook.

Two kinds, chosen by env ``MKT_WAREHOUSE`` (:func:`mkt_platform.settings.warehouse_kind`):

* ``ducklake`` (the default): a DuckLake (DuckDB's lakehouse format): its catalog in the
  SQLite file ``$MKT_DATA_DIR/warehouse.sqlite`` or in PostgreSQL (``MKT_DUCKLAKE_CATALOG``),
  its tables as Parquet files under ``$MKT_DATA_DIR/warehouse_files/`` or on S3
  (``MKT_DUCKLAKE_DATA_PATH``). Readers and dbt work at once: a reader sees each committed
  state, and dbt never waits for it. The DuckDB extensions it needs come from their Python
  packages (:mod:`mkt_platform.lib.duckdb_extensions`), never a download.
* ``duckdb``: one DuckDB file, ``$MKT_DATA_DIR/warehouse.duckdb`` (the default before
  DuckLake). DuckDB lets one process write it only while no other has it open, even
  read-only: a reader left open makes dbt wait (``MKT_WAREHOUSE_LOCK_WAIT_SECONDS``) and then
  fail.

In both, the warehouse is the connection's current database, named ``warehouse``, so the
same SQL reads either (``select * from marts.session_ohlc_daily``)::

    from mkt_platform.warehouse import connect
    connect().sql("select * from marts.session_ohlc_daily").df()
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from mkt_platform import settings

#: The warehouse's database name, in dbt's relation names (``warehouse.marts.<model>``).
DATABASE = "warehouse"


def kind() -> str:
    """``duckdb`` or ``ducklake`` (see the module docstring)."""
    return settings.warehouse_kind()


def catalog() -> str:
    """The DuckLake catalog (:func:`mkt_platform.settings.ducklake_catalog`):
    ``sqlite:<file>`` or ``postgres:<conninfo>``."""
    return settings.ducklake_catalog()


def catalog_path() -> Path | None:
    """The file that says what the warehouse holds: the DuckDB file, or a DuckLake's SQLite
    catalog; ``None`` for a catalog in PostgreSQL."""
    if kind() == "duckdb":
        return settings.warehouse_path()
    scheme, _, rest = catalog().partition(":")
    return Path(rest) if scheme == "sqlite" else None


def data_path() -> str:
    """Where a DuckLake warehouse keeps its tables' Parquet files, ending in ``/``."""
    return settings.ducklake_data_path()


def exists() -> bool:
    """Whether dbt has created the warehouse yet (always ``True`` for a catalog in
    PostgreSQL, whose server is configured: dbt creates the catalog there on its first
    build)."""
    path = catalog_path()
    return path is None or path.exists()


def superseded_file() -> Path | None:
    """The DuckDB-file warehouse of a user who has not chosen a kind (``MKT_WAREHOUSE`` unset)
    from before DuckLake became the default, when the DuckLake has not been built yet: its
    marts are not in the new warehouse until ``--from-lake`` rebuilds them. ``None``
    otherwise."""
    old = settings.warehouse_path()
    chosen = os.environ.get("MKT_WAREHOUSE", "").strip()
    return old if not chosen and kind() == "ducklake" and old.exists() and not exists() else None


def describe() -> str:
    """The warehouse in a few words, for messages: its kind and where it is (no secret: the
    catalog setting holds none)."""
    if kind() == "ducklake":
        return f"DuckLake, catalog {catalog()}, data {data_path()}"
    return str(catalog_path())


def extensions() -> tuple[str, ...]:
    """The DuckDB extensions a DuckLake warehouse's catalog needs."""
    scheme = catalog().partition(":")[0]
    return ("ducklake", "postgres_scanner" if scheme == "postgres" else "sqlite_scanner")


#: The DuckDB secret that names a DuckLake warehouse's catalog and data path for dbt's
#: connections: ``dbt_project/profiles.yml`` attaches ``ducklake:mkt_warehouse``, the same
#: text whatever the data directory, so dbt's saved parse (whose profile hash covers the
#: attach) stays valid in every data directory; the secret carries the paths.
DBT_SECRET = "mkt_warehouse"


def attach_sql(read_only: bool) -> str:
    """The ``ATTACH`` statement of a DuckLake warehouse as :data:`DATABASE`."""
    from mkt_platform.lib.s3 import sql_string

    options = f"DATA_PATH {sql_string(data_path())}" + (", READ_ONLY" if read_only else "")
    return f"ATTACH {sql_string('ducklake:' + catalog())} AS {DATABASE} ({options})"


def secret_sql() -> str:
    """The ``CREATE SECRET`` of :data:`DBT_SECRET` (temporary: this connection's database
    only): the catalog (:func:`catalog`) and data path (:func:`data_path`) of this process's
    settings.

    Raises:
        mkt_platform.settings.SettingError: a catalog setting that cannot be used.
    """
    from mkt_platform.lib.s3 import sql_string

    return (
        f"CREATE OR REPLACE TEMPORARY SECRET {DBT_SECRET} (TYPE ducklake, "
        f"METADATA_PATH {sql_string(catalog())}, DATA_PATH {sql_string(data_path())})"
    )


def file_attach_sql() -> str:
    """The ``ATTACH`` of a DuckDB-file warehouse as :data:`DATABASE`, read-write, for dbt's
    connections (``dbt_project/profiles.yml``, target ``local``, opens DuckDB in memory and
    names no file: its plugin runs this on each connection before the profile's own
    ``ATTACH IF NOT EXISTS ... AS warehouse``, which then finds it attached and does nothing).
    The profile is then the same text in every data directory, so dbt's saved parse (whose
    profile hash covers the path) serves them all. Spilled data goes beside the file, in
    ``<file>.tmp``, where DuckDB puts it when it opens the file itself.
    """
    from mkt_platform.lib.s3 import sql_string

    path = settings.warehouse_path()
    return (
        f"SET temp_directory = {sql_string(str(path) + '.tmp')}; "
        f"ATTACH IF NOT EXISTS {sql_string(str(path))} AS {DATABASE}"
    )


#: The DuckDB variable holding the raw lake's root, which the dbt sources and
#: ``dbt_project/macros/lake.sql`` read (``getvariable('mkt_lake') || '/raw/...'``).
LAKE_VARIABLE = "mkt_lake"


def set_lake_variable(con: duckdb.DuckDBPyConnection) -> None:
    """Set :data:`LAKE_VARIABLE` on ``con`` (a variable belongs to one connection or cursor):
    ``MKT_LAKE_URL`` (``s3://bucket/prefix``), else the absolute ``$MKT_DATA_DIR/lake``. dbt's
    plugin sets it on every connection; :func:`connect` too, so that SQL dbt compiled runs
    as it is.

    Raises:
        mkt_platform.settings.SettingError: a malformed ``MKT_LAKE_URL``.
    """
    from mkt_platform.lib.lake import lake_root

    con.execute(f"SET VARIABLE {LAKE_VARIABLE} = ?", [str(lake_root())])


def connect(read_only: bool = True) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection whose current database is the warehouse, in time zone UTC.

    Raises:
        FileNotFoundError: the warehouse does not exist yet (no dbt build has run); names it.
        duckdb.Error: DuckDB cannot open it (a DuckDB file another process writes).
        mkt_platform.lib.duckdb_extensions.ExtensionUnavailableError: a DuckLake warehouse
            whose extension packages are missing.
        mkt_platform.settings.SettingError: S3 settings that cannot be used.
    """
    if not exists():
        raise FileNotFoundError(f"no warehouse yet at {describe()}: run a dbt build first")
    from mkt_platform.lib import duckdb_extensions, s3

    ducklake = kind() == "ducklake"
    con = (
        duckdb_extensions.connect()
        if ducklake
        else duckdb_extensions.connect(str(catalog_path()), read_only=read_only)
    )
    try:
        if ducklake:
            duckdb_extensions.load_offline(con, extensions())
        # a lake on S3 (for a reader of the lake's files), and a DuckLake's files may be there
        s3.configure_duckdb(con)
        if ducklake:
            con.execute(attach_sql(read_only))
            con.execute(f"USE {DATABASE}")
        con.execute("SET TimeZone = 'UTC'")
        set_lake_variable(con)
    except BaseException:
        con.close()
        raise
    return con


def _lake_figures(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    (snapshots,) = con.execute(f"select count(*) from ducklake_snapshots('{DATABASE}')").fetchone()
    files, size, deletes, delete_size = con.execute(
        "select coalesce(sum(file_count), 0), coalesce(sum(file_size_bytes), 0), "
        "coalesce(sum(delete_file_count), 0), coalesce(sum(delete_file_size_bytes), 0) "
        f"from ducklake_table_info('{DATABASE}')"
    ).fetchone()
    return {
        "snapshots": int(snapshots),
        "data_files": int(files + deletes),
        "data_bytes": int(size + delete_size),
    }


def maintain(retention: timedelta, now: datetime | None = None) -> dict[str, int]:
    """The daily upkeep of a DuckLake warehouse (the job ``warehouse_maintenance``), in one
    writing connection:

    1. rows DuckLake keeps inline in its catalog (small inserts) are written out as Parquet;
    2. adjacent small data files are merged;
    3. snapshots older than ``retention`` are expired (a reader can still travel back that far);
    4. files that no remaining snapshot needs are deleted once they have been unneeded for
       ``retention`` (a reader still on an older snapshot is not pulled from under);
    5. orphaned files, which the catalog never recorded (a write that did not commit: a
       DuckLake commit that conflicted and was retried, a killed dbt), are deleted once older
       than ``retention`` (a write in flight is younger).

    Every dbt commit is a snapshot, so without it the catalog and the data files grow with
    every run, whatever the marts hold. The marts read the same before and after.

    Returns:
        ``snapshots``, ``data_files`` (data and delete files) and ``data_bytes``, each before
        and after (``<name>_before`` / ``<name>_after``), ``rows_flushed`` and
        ``orphaned_files_deleted``.

    Raises:
        ValueError: the warehouse is the DuckDB file (nothing of this applies to it).
        duckdb.Error: DuckLake refused (another writer committed meanwhile: the next day's
            run does it).
    """
    if kind() != "ducklake":
        raise ValueError(f"the warehouse is a DuckDB file ({describe()}), not a DuckLake")

    def cutoff() -> datetime:
        # read at each step: with no history kept (retention 0), the files that the merge
        # and the expiry of this very call schedule for deletion are older than it too
        return (now or datetime.now(UTC)) - retention

    with connect(read_only=False) as con:
        before = _lake_figures(con)
        flushed = con.execute(f"CALL ducklake_flush_inlined_data('{DATABASE}')").fetchall()
        con.execute(f"CALL ducklake_merge_adjacent_files('{DATABASE}')").fetchall()
        con.execute(
            f"CALL ducklake_expire_snapshots('{DATABASE}', older_than => ?)", [cutoff()]
        ).fetchall()
        con.execute(
            f"CALL ducklake_cleanup_old_files('{DATABASE}', older_than => ?)", [cutoff()]
        ).fetchall()
        orphans = con.execute(
            f"CALL ducklake_delete_orphaned_files('{DATABASE}', older_than => ?)", [cutoff()]
        ).fetchall()
        after = _lake_figures(con)
    figures = {f"{k}_before": v for k, v in before.items()}
    figures |= {f"{k}_after": v for k, v in after.items()}
    figures["rows_flushed"] = sum(int(row[-1]) for row in flushed)
    figures["orphaned_files_deleted"] = len(orphans)
    return figures
