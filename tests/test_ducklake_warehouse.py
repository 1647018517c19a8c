"""The warehouse on DuckLake (``MKT_WAREHOUSE=ducklake``, issue 15): dbt builds the same marts
there as in the DuckDB file, and a reader holding the warehouse open never blocks dbt.

The DuckDB file lets one process write only while no other has it open, so a notebook left
open makes every dbt run wait and fail (``test_faults_warehouse.py``). A DuckLake keeps its
catalog in SQLite (the default) or PostgreSQL (the local server, a database created for the
test) and its tables in Parquet files: here a reader stays attached for a whole three-day
run, querying the sessions as dbt writes them, and the read API serves them all the while;
the run succeeds, and both see committed states only.

Data: the real Binance 1h klines of BTCUSDT, ETHUSDT and SOLUSDT for the sessions
2023-03-14..16 (``../shared/data/binance/klines_*_1h_2023-03.json``) and the Hyperliquid
kPEPE cassette's (none that week), through the replay.
"""

from __future__ import annotations

import shutil
import threading
import time
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from mkt_platform import warehouse
from mkt_platform.api import create_app
from mkt_platform.definitions import build_definitions
from tests.conftest import PG, materialize_days

FIRST, LAST = date(2023, 3, 14), date(2023, 3, 16)


def marts(con) -> dict[str, list[tuple]]:
    """Every table and view of the marts schema, its rows in a fixed order."""
    names = [
        name
        for (name,) in con.execute(
            "select table_name from duckdb_tables() where schema_name = 'marts' "
            "and database_name = current_database() union all "
            "select view_name from duckdb_views() where schema_name = 'marts' "
            "and database_name = current_database() order by 1"
        ).fetchall()
    ]
    return {
        name: con.execute(f"select * from marts.{name} order by all").fetchall() for name in names
    }


def build(start: date, end: date) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        results = materialize_days(start, end, instance, only=("binance_klines_1h",))
    assert results and all(r.success for r in results), [(r.step.label, r.success) for r in results]


@pytest.fixture(params=["sqlite", "postgres"])
def catalog(request) -> str:
    """The DuckLake catalog setting: the default SQLite file, or a fresh database on the local
    PostgreSQL (conftest's ``postgres_db``, dropped after the test)."""
    if request.param == "sqlite":
        return ""
    name = request.getfixturevalue("postgres_db")
    return f"postgres:host={PG['host']} port={PG['port']} user={PG['user']} dbname={name}"


@pytest.mark.slow
def test_ducklake_holds_the_same_marts_and_a_reader_never_blocks_dbt(
    data_dir, hourly_universe, tmp_path, monkeypatch, catalog
):
    # The DuckDB file warehouse, as the reference.
    monkeypatch.setenv("MKT_DATA_DIR", str(tmp_path / "file_warehouse"))
    build(FIRST, LAST)
    with warehouse.connect() as con:
        expected = marts(con)
    assert warehouse.kind() == "duckdb"
    assert len(expected["session_ohlc_daily"]) == 9  # 3 sessions x 3 instruments

    # The DuckLake warehouse: the first session creates it; a reader attaches and keeps
    # querying while dbt builds the next two.
    monkeypatch.setenv("MKT_DATA_DIR", str(data_dir))
    monkeypatch.setenv("MKT_WAREHOUSE", "ducklake")
    if catalog:
        monkeypatch.setenv("MKT_DUCKLAKE_CATALOG", catalog)
    build(FIRST, FIRST)
    assert not (data_dir / "warehouse.duckdb").exists()
    assert (data_dir / "warehouse.sqlite").exists() == (not catalog)
    seen: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        try:
            with warehouse.connect() as reader:
                while not stop.is_set():
                    (count,) = reader.execute(
                        "select count(*) from marts.session_ohlc_daily"
                    ).fetchone()
                    seen.append(count)
                    time.sleep(0.05)
        except BaseException as exc:
            errors.append(exc)

    # The read API serves requests all the while too (issue 15): each answer a committed state.
    client = TestClient(create_app(token=None))
    served: list[tuple[int, int]] = []

    def serve() -> None:
        try:
            while not stop.is_set():
                response = client.get("/sessions/daily", params={"start": FIRST.isoformat()})
                served.append((response.status_code, len(response.json().get("rows", []))))
                time.sleep(0.05)
        except BaseException as exc:
            errors.append(exc)

    # The reader and the API are threads of this process here; in a deployment they are
    # processes of their own (a notebook, `mkt-platform api`) beside the run's process, where
    # dbt runs. dbt runs in a child process for this build so that it stays so: within one
    # process, two DuckLake connections to a SQLite catalog collide (with dbt in this process,
    # its attach failed with "database is locked" while the reader thread read; the profile's
    # `threads: 1` is for the same reason), which connections of other processes never did.
    monkeypatch.setenv("MKT_DBT_IN_PROCESS", "0")
    threads = [threading.Thread(target=read), threading.Thread(target=serve)]
    for thread in threads:
        thread.start()
    try:
        build(FIRST, LAST)  # dbt never waits: no file lock to wait for
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert not errors, errors
    assert len(served) >= 10 and {status for status, _ in served} == {200}, served[:5]
    counts = [count for _, count in served]
    assert counts[0] == 3 and counts[-1] == 9 and counts == sorted(counts), counts
    assert set(counts) <= {3, 6, 9}, sorted(set(counts))
    # Each dbt commit is a DuckLake snapshot; the reader read between them.
    with warehouse.connect() as con:
        (snapshots,) = con.execute(
            "select count(*) from ducklake_snapshots('warehouse')"
        ).fetchone()
    assert snapshots > 3
    # The reader saw committed states only, growing: the first session's 3 rows, then all 9.
    assert len(seen) >= 10 and seen[0] == 3 and seen[-1] == 9 and seen == sorted(seen), seen
    assert set(seen) <= {3, 6, 9}, sorted(set(seen))

    with warehouse.connect() as con:
        got = marts(con)
    assert got.keys() == expected.keys()
    for name, rows in expected.items():
        assert got[name] == rows, name

    # The daily upkeep (job warehouse_maintenance), with no history kept: one snapshot is
    # left, the files on disk are exactly those DuckLake still lists (the first session's
    # rewritten rows went with their snapshots, and a file a write left without committing
    # it, planted here, is deleted as orphaned), and every mart reads the same.
    orphan = Path(warehouse.data_path()) / "intermediate/int_candles_1h/ducklake-orphan.parquet"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(next(Path(warehouse.data_path()).rglob("*.parquet")), orphan)
    monkeypatch.setenv("MKT_DUCKLAKE_RETENTION_DAYS", "0")
    result = build_definitions().resolve_job_def("warehouse_maintenance").execute_in_process()
    assert result.success
    (output,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    figures = {k: v.value for k, v in output.event_specific_data.metadata.items()}
    assert not orphan.exists() and figures["orphaned_files_deleted"] >= 1
    assert figures["snapshots_before"] == snapshots  # no commit since they were counted
    assert figures["snapshots_after"] == 1
    with warehouse.connect() as con:
        listed = {  # every table's files: the marts', int_candles_1h's, the option trades'
            path
            for schema, name in con.execute(
                "select schema_name, table_name from duckdb_tables() "
                "where database_name = current_database()"
            ).fetchall()
            for row in con.execute(
                f"select data_file, delete_file from ducklake_list_files('warehouse', '{name}', "
                f"schema => '{schema}')"
            ).fetchall()
            for path in row
            if path
        }
        assert marts(con) == expected
    on_disk = {str(p) for p in Path(warehouse.data_path()).rglob("*") if p.is_file()}
    assert listed and on_disk == listed


@pytest.mark.slow
def test_from_lake_rebuilds_a_duckdb_users_warehouse_as_a_ducklake_leaving_the_lake(
    data_dir, hourly_universe, monkeypatch, capsys
):
    """The migration a user of the DuckDB file makes when DuckLake becomes their default (or
    they switch MKT_WAREHOUSE): the CLI says so on finding their old file, and
    ``mkt-platform materialize --from-lake`` over their days rebuilds the warehouse. Every
    exchange is unreachable for it, so a pull would fail the run: it pulls nothing, leaves
    every lake file as it was (bytes and modification time), and the DuckLake's marts equal
    the file's."""
    from mkt_platform import cli, settings

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    days = ["--start", "2023-03-14", "--end", "2023-03-15", "--only", "binance_klines_1h"]
    assert cli.main(["materialize", *days]) == 0  # from the replay, into the DuckDB file
    with warehouse.connect() as con:
        expected = marts(con)
    assert len(expected["session_ohlc_daily"]) == 6
    lake = {
        path: (path.stat().st_mtime_ns, path.read_bytes())
        for path in settings.lake_dir().rglob("*")
        if path.is_file()
    }
    assert lake

    monkeypatch.delenv("MKT_WAREHOUSE")  # the default: DuckLake
    for name in ("BINANCE_BASE_URL", "HYPERLIQUID_BASE_URL", "DERIBIT_BASE_URL"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.setenv("DERIBIT_HISTORY_BASE_URL", "http://127.0.0.1:9")
    capsys.readouterr()
    assert cli.main(["materialize", *days, "--from-lake"]) == 0
    out = capsys.readouterr().out
    assert f"note: {settings.warehouse_path()} is a DuckDB-file warehouse" in out
    assert "raw datasets: none pulled (--from-lake)" in out
    assert "raw pulls" not in out and "[1/1] dbt sessions" in out, out
    assert "warehouse: DuckLake" in out
    after = {
        path: (path.stat().st_mtime_ns, path.read_bytes())
        for path in settings.lake_dir().rglob("*")
        if path.is_file()
    }
    assert after == lake
    with warehouse.connect() as con:
        got = marts(con)
    assert got == expected
