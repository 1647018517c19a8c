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
import itertools
from datetime import UTC, date, datetime
from decimal import Decimal

import dagster as dg
import duckdb
import pytest

from mkt_platform.defs.deribit.datasets import VOLATILITY_INDEX
from mkt_platform.defs.deribit.resources import DeribitAPIError, DeribitClient
from mkt_platform.warehouse import set_lake_variable
from tests.conftest import SHARED_DATA, ephemeral_sql, materialize_days

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
    """The 31 days of 2023-03 through the platform path (the raw asset, then the UTC-daily
    dbt step that builds the staging view and dvol_daily downstream of it, one run for the
    month): the lake holds each day's BTC candle as recorded, the quality checks pass, and
    the staging view (the run's window) and the mart hold the month's candles, row for row
    as the CSV (where a day's open is not the previous close too)."""
    first, last = date(2023, 3, 1), date(2023, 3, 31)
    results = materialize_days(first, last, instance, only=("deribit_volatility_index",))
    assert results and all(r.success for r in results), [(r.step.label, r.success) for r in results]
    expected = recorded("BTC")
    days = [datetime(2023, 3, day, tzinfo=UTC) for day in range(1, 32)]
    lake = data_dir / "lake" / "raw" / "deribit" / "volatility_index"
    for start in days:
        with duckdb.connect() as con:
            rows = con.execute(
                f"select currency, resolution, timestamp, open, high, low, close "
                f"from '{lake}/date={start.date()}/part.parquet'"
            ).fetchall()
        assert [(r[0], r[1], r[2], tuple(r[3:])) for r in rows] == [
            ("BTC", "1D", start, expected[start])
        ]
    # Deribit's candles do not chain: the month has days whose open is not the last close.
    assert any(expected[a][3] != expected[b][0] for a, b in itertools.pairwise(days))
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
    staging = ephemeral_sql("stg_deribit__volatility_index")
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        set_lake_variable(con)  # the compiled staging SQL reads the lake's root from it
        rows = con.execute(
            "select instrument, interval, open_time, open, high, low, close "
            f"from ({staging}) order by open_time"
        ).fetchall()
        mart = con.execute(
            "select currency, day, open, high, low, close from marts.dvol_daily order by day"
        ).fetchall()
    assert [(r[0], r[1], r[2], tuple(r[3:])) for r in rows] == [
        ("BTC DVOL", "1d", start, expected[start]) for start in days
    ]
    # The mart: one row per currency and day, equal to the recording row for row.
    assert [(r[0], r[1], tuple(r[2:])) for r in mart] == [
        ("BTC", start.date(), expected[start]) for start in days
    ]


# --------------------------------------------------------------------------------------------
# Resolution 3600 (hourly DVOL): collected where a currency's instruments line asks for it.
# Nothing was recorded at that resolution: against the real recordings the pull is refused
# with Deribit's error; the hourly path itself runs on SYNTHETIC candles, labelled so.
# --------------------------------------------------------------------------------------------

HOURLY_DAY = "2023-03-01"


def hourly_universe(path, intervals: list[str]):
    path.write_text(
        "instruments:\n"
        "  - {venue: deribit, instrument: BTC, base: BTC, quote: USD, market: option, "
        f"intervals: [{', '.join(intervals)}]}}\n"
    )
    return path


def pull_dvol(base_url: str, instance, partition_key: str = HOURLY_DAY):
    return dg.materialize(
        [VOLATILITY_INDEX.asset()],
        partition_key=partition_key,
        resources={"deribit": DeribitClient(base_url=base_url, history_base_url=base_url)},
        instance=instance,
        raise_on_error=False,
    )


def lake_file(data_dir, partition_key: str = HOURLY_DAY):
    return (
        data_dir
        / "lake"
        / "raw"
        / "deribit"
        / "volatility_index"
        / f"date={partition_key}"
        / "part.parquet"
    )


@pytest.fixture
def synthetic_replay(tmp_path):
    """A replay of the real daily BTC recording beside SYNTHETIC hourly BTC candles of
    2023-02-28..03-02 (mkt_platform.testing.synthetic_deribit)."""
    from mkt_platform.replay import ReplayServer
    from mkt_platform.replay.deribit import DeribitHandler
    from mkt_platform.testing.synthetic_deribit import write_synthetic_volatility_index

    folder = tmp_path / "replay" / "deribit"
    folder.mkdir(parents=True)
    (folder / RECORDING.format("BTC")).symlink_to(SHARED_DATA / "deribit" / RECORDING.format("BTC"))
    csv_path = write_synthetic_volatility_index(
        folder, "BTC", date(2023, 2, 28), date(2023, 3, 2), "3600", seed=5
    )
    with ReplayServer(tmp_path / "replay", handlers={"deribit": DeribitHandler(folder)}) as server:
        yield server, csv_path


def synthetic_candles(csv_path) -> dict[datetime, tuple[Decimal, ...]]:
    with csv_path.open(newline="") as handle:
        return {
            datetime.fromisoformat(row["date"]).replace(tzinfo=UTC): tuple(
                Decimal(row[k]) for k in ("open", "high", "low", "close")
            )
            for row in csv.DictReader(handle)
        }


def test_hourly_without_a_recording_is_refused_and_nothing_is_written(
    data_dir, replay, instance, tmp_path, monkeypatch
):
    """BTC asks for 3600 and the replay holds only the daily recording: the run fails with
    Deribit's error naming the resolution; the partition gets no file, not even the daily
    candle (one request failing fails the whole pull)."""
    monkeypatch.setenv("MKT_INSTRUMENTS_FILE", str(hourly_universe(tmp_path / "i.yaml", ["3600"])))
    result = pull_dvol(replay.base_url("deribit"), instance)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message
    assert "deribit_volatility_index" in message and "2023-03-01" in message
    assert "no recording" in message and "resolution 3600" in message
    assert not lake_file(data_dir).exists()


def test_hourly_candles_land_beside_the_daily_one_with_their_checks(
    data_dir, synthetic_replay, instance, tmp_path, monkeypatch
):
    """With 3600 configured, a day's file holds its recorded daily candle and its 24 hourly
    (SYNTHETIC) candles, value for value as the files; the quality checks judge each
    resolution by its own candle length and pass."""
    server, csv_path = synthetic_replay
    monkeypatch.setenv("MKT_INSTRUMENTS_FILE", str(hourly_universe(tmp_path / "i.yaml", ["3600"])))
    result = pull_dvol(server.base_url("deribit"), instance)
    assert result.success
    with duckdb.connect() as con:
        rows = con.execute(
            "select resolution, timestamp, open, high, low, close "
            f"from '{lake_file(data_dir)}' order by resolution, timestamp"
        ).fetchall()
    day = datetime(2023, 3, 1, tzinfo=UTC)
    hourly = synthetic_candles(csv_path)
    hours = sorted(
        ("3600", start, values) for start, values in hourly.items() if start.date() == day.date()
    )
    expected = [("1D", day, recorded("BTC")[day]), *hours]
    assert [(r[0], r[1], tuple(r[2:])) for r in rows] == expected and len(expected) == 25
    metadata = result.asset_materializations_for_node("deribit_volatility_index")[0].metadata
    assert metadata["rows_per_resolution"].value == {"1D": 1, "3600": 24}
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks and all(c.passed for c in checks.values()), checks


def test_a_missing_hour_fails_the_hourly_check_only(
    data_dir, synthetic_replay, instance, tmp_path, monkeypatch
):
    """The upstream lies by omission: one hourly candle is missing from the answer. The
    expected-candles check fails naming the resolution, the currency and the hour; the daily
    candle, complete, is not blamed."""
    server, csv_path = synthetic_replay
    lines = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join(line for line in lines if "2023-03-01 13:00:00" not in line))
    monkeypatch.setenv("MKT_INSTRUMENTS_FILE", str(hourly_universe(tmp_path / "i.yaml", ["3600"])))
    result = pull_dvol(server.base_url("deribit"), instance)
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    failed = [name for name, c in checks.items() if not c.passed]
    assert failed == ["expected_candles"], checks
    examples = checks["expected_candles"].metadata["examples"].value
    assert examples and all(e.startswith("2023-03-01: 3600: ") for e in examples), examples
    assert any("BTC" in e and "13:00" in e for e in examples), examples


def test_dropping_the_hourly_resolution_refuses_to_overwrite_its_candles(
    data_dir, synthetic_replay, instance, tmp_path, monkeypatch
):
    """A settings file that loses 3600 would re-pull the day without its hourly candles: the
    re-pull is refused naming the series, and the file keeps its 25 candles."""
    server, _ = synthetic_replay
    monkeypatch.setenv("MKT_INSTRUMENTS_FILE", str(hourly_universe(tmp_path / "i.yaml", ["3600"])))
    assert pull_dvol(server.base_url("deribit"), instance).success
    before = lake_file(data_dir).read_bytes()
    monkeypatch.setenv("MKT_INSTRUMENTS_FILE", str(hourly_universe(tmp_path / "j.yaml", [])))
    result = pull_dvol(server.base_url("deribit"), instance)
    assert not result.success
    message = next(
        e for e in result.all_events if e.is_step_failure
    ).step_failure_data.error.message
    assert "BTC 3600" in message and "MKT_ALLOW_UNIVERSE_SHRINK" in message
    assert lake_file(data_dir).read_bytes() == before
