"""dbt's own tests: the unit tests of the session metrics, and the data tests on bad data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import dagster as dg
import duckdb
import pyarrow as pa
import pytest

from mkt_platform.defs.binance.contract import KLINE_CONTRACT, KLINE_LAKE_SCHEMA
from mkt_platform.lib import lake
from mkt_platform.lib.dbt import (
    dbt_build_args,
    dbt_project,
    dbt_resource,
    dbt_window_env,
    environment,
)
from tests.conftest import files_read, recorded_klines

pytestmark = pytest.mark.slow


def dbt(*args: str):
    invocation = dbt_resource().cli(list(args), raise_on_error=False)
    invocation.wait()
    return invocation


def results(invocation) -> dict[str, str]:
    run_results = json.loads((invocation.target_path / "run_results.json").read_text())
    return {r["unique_id"]: r["status"] for r in run_results["results"]}


def write_day(day: str, rows: list[list]) -> None:
    table = KLINE_CONTRACT.to_table(rows, "test")
    table = table.add_column(0, "symbol", pa.array(["BTCUSDT"] * len(rows))).cast(KLINE_LAKE_SCHEMA)
    lake.write_parquet_atomic(table, lake.raw_partition_path("binance", "klines_1h", day))


def day_of_btc(day_number: int) -> list[list]:
    """Binance's real BTCUSDT 1h klines of one UTC day (days since 1970-01-01)."""
    return [r for r in recorded_klines("BTCUSDT", "1h") if r[0] // 86_400_000 == day_number]


def test_unit_tests_pass_here_and_partition_builds_leave_them_out(data_dir):
    """Every dbt unit test of the project (rounding, tie and gap rules of the sessions, the
    options marts' methods) passes, also with the session window Dagster sets in the
    environment (which must not filter their rows). A partition run's build leaves them out
    (they depend on the code, not on the partition) and runs the data tests."""
    write_day("2023-01-05", day_of_btc(19362))
    window = dg.TimeWindow(datetime(2023, 1, 5, 8, tzinfo=UTC), datetime(2023, 1, 6, 8, tzinfo=UTC))
    declared = json.loads(dbt_project().manifest_path.read_text())["unit_tests"]
    assert len(declared) >= 16
    with environment(dbt_window_env(window)):
        build = dbt(*dbt_build_args())
        # Unit tests read their inputs' columns from the warehouse: after the build.
        unit_run = dbt("test", "--select", "test_type:unit", *dbt_build_args()[1:3])
    statuses = results(build)
    assert build.is_successful(), statuses
    assert not [uid for uid in statuses if uid.startswith("unit_test.")]
    assert statuses["model.mkt_platform.session_ohlc_daily"] == "success"
    assert [uid for uid in statuses if uid.startswith("test.")]

    unit = results(unit_run)
    assert set(unit) == set(declared)
    assert len([uid for uid in unit if ".session_ohlc_daily." in uid]) == 3
    assert set(unit.values()) == {"pass"} and unit_run.is_successful()


def test_ohlc_sanity_rejects_a_corrupted_candle(data_dir):
    """A candle whose low is above its open must fail the build, not reach the mart.

    The lake holds real BTCUSDT klines of 2023-01-05 with one candle corrupted on purpose
    (low raised above the open), which no exchange answer would contain."""
    rows = day_of_btc(19362)
    assert len(rows) == 24
    write_day("2023-01-05", rows)
    clean = dbt("build", "--select", "stg_binance__klines")
    assert clean.is_successful(), results(clean)

    rows[5] = [*rows[5][:3], str(Decimal(rows[5][1]) + 1), *rows[5][4:]]
    write_day("2023-01-05", rows)
    broken = dbt("build", "--select", "stg_binance__klines")
    assert not broken.is_successful()
    failed = {uid for uid, status in results(broken).items() if status == "fail"}
    assert len(failed) == 1
    assert "ohlc_sanity_stg_binance__klines" in failed.pop()


def test_a_one_session_build_reads_only_the_lake_files_of_its_window(data_dir):
    """Five days of real BTCUSDT klines in the lake; the window of the session 2023-01-05
    08:00 to 01-06 08:00 makes the staging view open the files of those two UTC days only
    (hive partition pruning before the dedupe), with all their 48 candles; with no window it
    opens all five."""
    for day_number in range(19360, 19365):  # 2023-01-03 .. 2023-01-07
        day = datetime.fromtimestamp(day_number * 86_400, UTC).date().isoformat()
        write_day(day, day_of_btc(day_number))
    view = "select * from staging.stg_binance__klines"
    warehouse = data_dir / "warehouse.duckdb"
    assert dbt("build", "--select", "stg_binance__klines").is_successful()
    assert files_read(warehouse, view) == {5}
    window = dg.TimeWindow(datetime(2023, 1, 5, 8, tzinfo=UTC), datetime(2023, 1, 6, 8, tzinfo=UTC))
    with environment(dbt_window_env(window)):
        assert dbt("build", "--select", "stg_binance__klines").is_successful()
    assert files_read(warehouse, view) == {2}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        days = con.execute(
            "select partition_date::varchar, count(*) from staging.stg_binance__klines "
            "group by all order by 1"
        ).fetchall()
    assert days == [("2023-01-05", 24), ("2023-01-06", 24)]
