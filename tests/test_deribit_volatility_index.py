"""Deribit's volatility index DVOL, the first dataset added under the raw-dataset registry:
its spec (``defs/deribit/datasets.py``), its pull and its staging model, nothing else.

Against the replay of Deribit's real daily DVOL candles
(``shared/data/deribit/dvol_{BTC,ETH}_1D_2021-03-24_to_2026-04-06.csv``, SOURCES.md
section 12): the client pages the whole recording by ``continuation`` and returns it value
for value; a resolution with no recording is an error, never invented candles; the raw
asset and the staging view hold the recorded candles of their days.
"""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from decimal import Decimal

import dagster as dg
import duckdb
import pytest

from mkt_platform.defs.deribit.datasets import VOLATILITY_INDEX
from mkt_platform.defs.deribit.resources import DeribitAPIError, DeribitClient
from tests.conftest import SHARED_DATA, materialize_days

RECORDING = "dvol_{}_1D_2021-03-24_to_2026-04-06.csv"


def recorded(currency: str) -> dict[datetime, tuple[Decimal, ...]]:
    """The recorded candles of ``currency``, by UTC day start, read here from the CSV."""
    with (SHARED_DATA / "deribit" / RECORDING.format(currency)).open(newline="") as handle:
        return {
            datetime.fromisoformat(row["date"]).replace(tzinfo=UTC): tuple(
                Decimal(row[k]) for k in ("open", "high", "low", "close")
            )
            for row in csv.DictReader(handle)
        }


@pytest.fixture
def client(replay) -> DeribitClient:
    return DeribitClient(
        base_url=replay.base_url("deribit"), history_base_url=replay.base_url("deribit_history")
    )


@pytest.mark.parametrize("currency", ["BTC", "ETH"])
def test_the_whole_recording_pages_by_continuation(client, replay, currency):
    """1,840 daily candles (more than one answer holds): every candle, in order, equal to
    the file, in the requests ``continuation`` chains."""
    before = len(replay.requests("deribit"))
    table = client.fetch_volatility_index(currency, 0, 1_800_000_000_000)
    pages = len(replay.requests("deribit")) - before
    expected = recorded(currency)
    got = {
        row["timestamp"]: (row["open"], row["high"], row["low"], row["close"])
        for row in table.to_pylist()
    }
    assert got == expected and len(expected) == 1840
    assert [r["timestamp"] for r in table.to_pylist()] == sorted(expected)
    assert pages == 2  # 1000 + 840


def test_a_resolution_without_recording_is_an_error_not_invented_candles(client):
    with pytest.raises(DeribitAPIError) as info:
        client.fetch_volatility_index("BTC", 0, 1_800_000_000_000, resolution="3600")
    assert "no recording" in info.value.message and "3600" in info.value.message


def test_raw_asset_and_staging_hold_the_recorded_days(data_dir, instance):
    """Three days through the platform path (the raw asset, then the UTC-daily dbt step that
    builds the staging view and dvol_daily downstream of it, one run for the three days): the
    lake holds each day's BTC candle as recorded, the quality checks pass, and the staging
    view (the run's window) and the mart hold the three candles as recorded."""
    results = materialize_days(
        date(2023, 3, 1), date(2023, 3, 3), instance, only=("deribit_volatility_index",)
    )
    assert results and all(r.success for r in results), [(r.step.label, r.success) for r in results]
    expected = recorded("BTC")
    lake = data_dir / "lake" / "raw" / "deribit" / "volatility_index"
    for day in (1, 2, 3):
        start = datetime(2023, 3, day, tzinfo=UTC)
        with duckdb.connect() as con:
            rows = con.execute(
                f"select currency, resolution, timestamp, open, high, low, close "
                f"from '{lake}/date=2023-03-0{day}/part.parquet'"
            ).fetchall()
        assert [(r[0], r[1], r[2], tuple(r[3:])) for r in rows] == [
            ("BTC", "1D", start, expected[start])
        ]
    record = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=VOLATILITY_INDEX.key, asset_partitions=["2023-03-02"]),
        limit=1,
    ).records[0]
    metadata = record.asset_materialization.metadata
    assert metadata["rows_per_instrument"].value == {"BTC": 1}
    assert metadata["window_closed"].value is True
    checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [
            dg.AssetCheckKey(VOLATILITY_INDEX.key, name)
            for name in ("ohlc_sane", "no_duplicate_keys")
        ]
    )
    assert all(c.evaluation.passed for c in checks.values())
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "select instrument, interval, open_time, open, high, low, close "
            "from staging.stg_deribit__volatility_index order by open_time"
        ).fetchall()
    days = [datetime(2023, 3, day, tzinfo=UTC) for day in (1, 2, 3)]
    assert [(r[0], r[1], r[2], tuple(r[3:])) for r in rows] == [
        ("BTC DVOL", "1d", start, expected[start]) for start in days
    ]
    # The mart: one row per currency and day, equal to the recording row for row.
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        mart = con.execute(
            "select currency, day, open, high, low, close from marts.dvol_daily order by day"
        ).fetchall()
    assert [(r[0], r[1], tuple(r[2:])) for r in mart] == [
        ("BTC", start.date(), expected[start]) for start in days
    ]
