"""Binance 1m klines: replayed from freqtrade's recording (fields it lacks stay NULL), checked
against Binance's own 1h klines, and the gap detection and repair around the 2023-03-24 halt.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from mkt_platform.defs.binance.datasets import KLINES_1M
from mkt_platform.defs.binance.resources import BinanceSpotClient
from mkt_platform.defs.binance.schedules import build_gap_repair_schedule
from mkt_platform.lib import lake
from mkt_platform.replay import Response
from tests.conftest import SHARED_DATA, SYMBOLS, recorded_klines

KEY = dg.AssetKey("binance_klines_1m")
ASSET = KLINES_1M.asset()
SCHEDULE = build_gap_repair_schedule(ASSET)
REPOSITORY = dg.Definitions(
    assets=[ASSET], schedules=[SCHEDULE], resources={"binance": BinanceSpotClient()}
).get_repository_def()
HALT_DAY = "2023-03-24"


@pytest.fixture
def instance(instance_with_ref):
    """Schedule contexts open the instance from its reference: SQLite files, not memory."""
    return instance_with_ref


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def pull(replay, instance, first, last=None, run_config=None, tags=None):
    tags = {
        ASSET_PARTITION_RANGE_START_TAG: first,
        ASSET_PARTITION_RANGE_END_TAG: last or first,
        **(tags or {}),
    }
    return dg.materialize(
        [ASSET],
        resources={
            "binance": BinanceSpotClient(
                base_url=replay.base_url("binance"), backoff_initial_seconds=0.01
            )
        },
        instance=instance,
        tags=tags,
        run_config=run_config,
        raise_on_error=False,
    )


def metadata(instance, partition):
    (record,) = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=KEY, asset_partitions=[partition]), limit=1
    ).records
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def evaluate_schedule(instance, at: str) -> list[dg.RunRequest]:
    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=datetime.fromisoformat(at).replace(tzinfo=UTC),
        repository_def=REPOSITORY,
    )
    return list(SCHEDULE.evaluate_tick(context).run_requests or [])


def run_request(replay, instance, request: dg.RunRequest):
    return pull(
        replay,
        instance,
        request.partition_key,
        run_config=request.run_config,
        tags={k: v for k, v in request.tags.items() if not k.startswith("dagster/")},
    )


def freqtrade_minutes(symbol: str) -> dict[int, list]:
    base = symbol.removesuffix("USDT")
    # The 2023 recording (SOURCES.md section 2); later windows of the same pair are other files.
    path = SHARED_DATA / "binance" / f"freqtrade_{base}_USDT-1m_2023-03-16_to_2023-05-01.json"
    return {row[0]: row for row in json.loads(path.read_text())}


@pytest.mark.slow
def test_1m_aggregates_to_binance_1h_exactly(data_dir, replay, instance):
    """45 days of 1m klines, aggregated to hours, must give Binance's own 1h OHLC exactly and
    its volume to float precision, for every complete hour of 2023-03-17..2023-04-30."""
    assert pull(replay, instance, "2023-03-17", "2023-04-30").success
    files = sorted((data_dir / "lake/raw/binance/klines_1m").glob("date=*/part.parquet"))
    assert len(files) == 45
    glob = str(data_dir / "lake/raw/binance/klines_1m/date=*/part.parquet")
    hours = duckdb.sql(
        f"""
        select symbol, epoch_ms(date_trunc('hour', open_time)) as hour,
               arg_min(open, open_time) as open, max(high) as high, min(low) as low,
               arg_max(close, open_time) as close, sum(volume) as volume, count(*) as minutes,
               count(close_time) + count(quote_volume) + count(trades) as lacking_fields
        from read_parquet('{glob}') group by all
        """
    ).fetchall()
    assert {h[-1] for h in hours} == {0}, "fields freqtrade lacks must stay NULL, not invented"
    complete = {(h[0], h[1]): h for h in hours if h[7] == 60}
    start, end = ms("2023-03-17T00:00"), ms("2023-05-01T00:00")
    compared = 0
    for symbol in SYMBOLS:
        oracle = {r[0]: r for r in recorded_klines(symbol, "1h") if start <= r[0] < end}
        # The halt: 12:00 has 40 minutes, 13:00 none; every other hour has all 60.
        expected_complete = set(oracle) - {ms("2023-03-24T12:00")}
        assert {t for (s, t) in complete if s == symbol} == expected_complete
        for t in expected_complete:
            _, _, o, h, lo, c, v, _, _ = complete[(symbol, t)]
            row = oracle[t]
            assert (o, h, lo, c) == tuple(Decimal(x) for x in row[1:5]), (symbol, t)
            assert abs(float(v) - float(row[5])) <= 1e-9 * float(row[5]) + 1e-8
            compared += 1
    assert compared == 3 * 1078


def test_halt_is_reported_once_as_a_known_gap(data_dir, replay, instance):
    """The halt (12:40-13:59 on 2023-03-24) is listed as missing, re-pulled exactly once by the
    gap repair (only that range), then recorded as a known gap and never requested again."""
    assert pull(replay, instance, "2023-03-23", HALT_DAY).success
    meta = metadata(instance, HALT_DAY)
    assert meta["missing_candles"] == {s: ["12:40-13:59"] for s in SYMBOLS}
    assert meta["unrepaired_candles"] == 3 * 80
    assert meta["known_gaps"] == {}
    assert metadata(instance, "2023-03-23")["missing_candles"] == {}
    # The NULL fields of the recording reach the lake as NULL.
    table = pq.read_table(lake.raw_partition_path("binance", "klines_1m", HALT_DAY))
    assert table.num_rows == 3 * (1440 - 80)
    assert table["trades"].null_count == table.num_rows

    (request,) = evaluate_schedule(instance, "2023-03-26T00:20")
    assert request.partition_key == HALT_DAY
    assert request.tags["mkt/reason"] == "gap_repair"
    before = len(replay.requests("binance"))
    assert run_request(replay, instance, request).success
    repulls = replay.requests("binance")[before:]
    assert sorted(
        (r.query["symbol"][0], int(r.query["startTime"][0]), int(r.query["endTime"][0]))
        for r in repulls
    ) == [(s, ms("2023-03-24T12:40"), ms("2023-03-24T13:59")) for s in SYMBOLS]

    meta = metadata(instance, HALT_DAY)
    assert meta["known_gaps"] == {s: ["12:40-13:59"] for s in SYMBOLS}
    assert meta["missing_candles"] == {s: ["12:40-13:59"] for s in SYMBOLS}
    assert meta["unrepaired_candles"] == 0
    assert evaluate_schedule(instance, "2023-03-26T01:20") == []
    # A full re-pull of the day keeps the gap known (no repair requested again).
    assert pull(replay, instance, HALT_DAY).success
    assert metadata(instance, HALT_DAY)["unrepaired_candles"] == 0
    assert evaluate_schedule(instance, "2023-03-26T02:20") == []


def test_repair_re_pulls_exactly_the_missing_ranges(data_dir, replay, instance, monkeypatch):
    """A pull cut short (the first page came back truncated) leaves 10:00-23:59 missing; the
    repair asks Binance for exactly that range and leaves the day complete, identical to a
    clean pull."""
    custom = data_dir.parent / "instruments.yaml"
    custom.write_text(
        "instruments:\n"
        "  - {venue: binance, instrument: BTCUSDT, base: BTC, quote: USDT, market: spot, intervals: [1m]}\n"
    )
    monkeypatch.setenv("MKT_INSTRUMENTS_FILE", str(custom))
    day = "2023-04-12"
    minutes = freqtrade_minutes("BTCUSDT")
    first_600 = [
        [
            t,
            *(f"{Decimal(repr(x)):.8f}" for x in minutes[t][1:]),
            None,
            None,
            None,
            None,
            None,
            None,
        ]
        for t in range(ms(day + "T00:00"), ms(day + "T10:00"), 60_000)
    ]
    replay.inject("binance", [Response.json(first_600)])
    assert pull(replay, instance, day).success
    meta = metadata(instance, day)
    assert meta["missing_candles"] == {"BTCUSDT": ["10:00-23:59"]}
    assert meta["unrepaired_candles"] == 840

    (request,) = evaluate_schedule(instance, "2023-04-14T00:20")
    before = len(replay.requests("binance"))
    assert run_request(replay, instance, request).success
    repulls = replay.requests("binance")[before:]
    assert {(int(r.query["startTime"][0]), int(r.query["endTime"][0])) for r in repulls} == {
        (ms(day + "T10:00"), ms(day + "T23:59"))
    }
    meta = metadata(instance, day)
    assert meta["missing_candles"] == {} and meta["unrepaired_candles"] == 0
    repaired = pq.read_table(lake.raw_partition_path("binance", "klines_1m", day))
    assert repaired["open_time"].to_pylist() == sorted(repaired["open_time"].to_pylist())
    assert [int(t.timestamp() * 1000) for t in repaired["open_time"].to_pylist()] == list(
        range(ms(day + "T00:00"), ms(day + "T00:00") + 86_400_000, 60_000)
    )
    assert [float(x) for x in repaired["close"].to_pylist()] == [
        minutes[t][4] for t in range(ms(day + "T00:00"), ms(day + "T00:00") + 86_400_000, 60_000)
    ]
    assert evaluate_schedule(instance, "2023-04-14T01:20") == []
