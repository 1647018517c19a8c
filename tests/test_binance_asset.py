"""The raw asset ``binance_klines_1h`` through Dagster, against the replay server.

Covers what the asset promises: one paginated range per symbol for a whole single-run
backfill, per-partition metadata, byte-identical re-materialization, atomic writes, and
no file written when a response breaks the contract.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from mkt_platform.defs.binance.datasets import KLINES_1H
from mkt_platform.defs.binance.resources import BinanceSpotClient
from mkt_platform.lib import lake
from mkt_platform.replay import Response
from tests.conftest import SYMBOLS, materialize_days, read_sessions, recorded_klines

KEY = dg.AssetKey("binance_klines_1h")


def client(replay) -> BinanceSpotClient:
    return BinanceSpotClient(
        base_url=replay.base_url("binance"),
        max_attempts=3,
        backoff_initial_seconds=0.01,
        backoff_max_seconds=0.05,
    )


def pull(replay, instance, first: str, last: str | None = None) -> dg.ExecuteInProcessResult:
    """Materialize the raw asset alone for the partitions first..last in one run."""
    tags = {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last or first}
    return dg.materialize(
        [KLINES_1H.asset()],
        resources={"binance": client(replay)},
        instance=instance,
        tags=tags,
        raise_on_error=False,
    )


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    (event,) = result.get_step_failure_events()
    return event.step_failure_data.error.to_string()


def lake_files(data_dir: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(data_dir)): p.read_bytes()
        for p in sorted((data_dir / "lake").rglob("*"))
        if p.is_file()
    }


def latest_metadata(instance: dg.DagsterInstance, partition: str) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=KEY, asset_partitions=[partition]), limit=1
    ).records
    return records[0].asset_materialization.metadata


def day_payload(symbol: str, day: str) -> bytes:
    start = int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)
    rows = [r for r in recorded_klines(symbol, "1h") if start <= r[0] < start + 86_400_000]
    return json.dumps(rows).encode()


def test_single_run_backfill_fetches_ranges_not_partitions(data_dir, replay, instance):
    """90 days x 3 symbols must cost ceil(2159 / 1000) = 3 requests per symbol, not 270, and
    land one file per day holding every symbol."""
    before = replay.request_count("binance")
    result = pull(replay, instance, "2023-01-01", "2023-03-31")
    assert result.success
    assert replay.request_count("binance") - before == 3 * 3
    files = sorted((data_dir / "lake/raw/binance/klines_1h").glob("date=*/part.parquet"))
    assert len(files) == 90
    table = pq.read_table(files[0])
    assert table.num_rows == 72
    assert set(table["symbol"].to_pylist()) == set(SYMBOLS)


def test_partition_metadata_reports_counts_gaps_hash_and_closure(data_dir, replay, instance):
    """The halt day's materialization must say 69 of 72 candles with 13:00 missing for each
    symbol, and record the hash of exactly what the file holds."""
    assert pull(replay, instance, "2023-03-23", "2023-03-24").success
    meta = latest_metadata(instance, "2023-03-24")
    assert meta["expected_candles"].value == 72
    assert meta["actual_candles"].value == 69
    assert meta["rows_per_instrument"].value == dict.fromkeys(SYMBOLS, 23)
    assert meta["missing_candles"].value == {s: ["13:00"] for s in SYMBOLS}
    assert meta["window_closed"].value is True
    assert meta["first_open_time"].value == datetime(2023, 3, 24, tzinfo=UTC).timestamp()
    assert meta["last_open_time"].value == datetime(2023, 3, 24, 23, tzinfo=UTC).timestamp()
    table = pq.read_table(lake.raw_partition_path("binance", "klines_1h", "2023-03-24"))
    assert meta["content_hash"].value == lake.content_hash(table)
    other = latest_metadata(instance, "2023-03-23")
    assert other["content_hash"].value != meta["content_hash"].value
    assert other["missing_candles"].value == {}


def test_materializing_twice_is_byte_identical_without_duplicates(data_dir, instance):
    """Re-running the main job over the same days must replace, never append: identical
    Parquet bytes and identical session rows, one per (instrument, session)."""
    days = (date(2023, 1, 2), date(2023, 1, 4))
    assert all(r.success for r in materialize_days(*days, instance, only=("binance_klines_1h",)))
    files, sessions = lake_files(data_dir), read_sessions(data_dir)
    assert all(r.success for r in materialize_days(*days, instance, only=("binance_klines_1h",)))
    assert lake_files(data_dir) == files
    assert read_sessions(data_dir) == sessions
    assert len(sessions) == 9
    assert len({(s["instrument"], s["session_start"]) for s in sessions}) == 9


def test_write_killed_midway_leaves_previous_file(data_dir, replay, instance, monkeypatch):
    """A write that dies half-way must leave the previous file byte for byte, and no temp."""
    assert pull(replay, instance, "2023-01-05").success
    path = lake.raw_partition_path("binance", "klines_1h", "2023-01-05")
    previous = path.read_bytes()

    def die_midway(table, where, **kwargs):
        where.write(b"PAR1 half a file")
        raise OSError("killed mid-write")

    monkeypatch.setattr(lake.pq, "write_table", die_midway)
    result = pull(replay, instance, "2023-01-05")
    assert not result.success
    assert "killed mid-write" in failure_text(result)
    assert path.read_bytes() == previous
    assert [p.name for p in path.parent.iterdir()] == ["part.parquet"]


MALFORMED = {
    "missing field": (
        Response.json(
            [[1672876800000, "1", "2", "0.5", "1.5", "10", 1672880399999, "15", 3, "1", "1"]]
        ),
        "field 'taker_buy_base_volume|taker_buy_quote_volume|ignore'",
    ),
    "non-numeric price": (
        Response.json(
            [[1672876800000, "1", "n/a", "0.5", "1.5", "10", 1672880399999, "15", 3, "1", "1", "0"]]
        ),
        "field 'high'",
    ),
    "html error page": (
        Response(200, {"Content-Type": "text/html"}, b"<html><body>502 Bad Gateway</body></html>"),
        "text/html",
    ),
    "empty body": (Response.raw_json(b""), "an empty body"),
    "truncated body": (
        Response.raw_json(day_payload("ETHUSDT", "2023-01-05")[:700]),
        "undecodable",
    ),
}


@pytest.mark.parametrize("kind", MALFORMED)
def test_malformed_response_fails_the_run_and_writes_nothing(kind, data_dir, replay, instance):
    """BTCUSDT answers well, ETHUSDT breaks the contract: the run fails naming the endpoint,
    the symbol, the time range and the field, and not even BTCUSDT's rows are written."""
    bad, expected = MALFORMED[kind]
    good = Response.raw_json(day_payload("BTCUSDT", "2023-01-05"))
    # A body that is not JSON (an HTML page, empty, cut short) is retried: every attempt.
    attempts = 3 if kind in ("html error page", "empty body", "truncated body") else 1
    replay.inject("binance", [good, *[bad] * attempts])
    result = pull(replay, instance, "2023-01-05")
    assert not result.success
    text = failure_text(result)
    for part in ("/api/v3/klines", "ETHUSDT", "2023-01-05T00:00:00.000+00:00", expected):
        assert part in text, (part, text)
    assert "binance_klines_1h partition 2023-01-05" in text
    assert not (data_dir / "lake" / "raw").exists()
    # The offending body is quarantined byte for byte, with the violation beside it.
    bodies = [
        p
        for p in (data_dir / "lake" / "quarantine" / "binance_klines").glob("*.json")
        if not p.name.endswith(".error.json")
    ]
    assert [p.read_bytes() for p in bodies] == [bad.body]
    violation = json.loads(bodies[0].with_name(bodies[0].stem + ".error.json").read_text())
    assert violation["asset_key"] == "binance_klines_1h"
    assert violation["partitions"] == ["2023-01-05"]
    assert "ETHUSDT" in violation["source"]


def test_body_cut_off_in_transfer_is_retried_then_named(data_dir, replay, instance):
    """A connection that drops mid-body on every attempt fails with the request named."""
    cut = Response(200, {"Content-Length": "5000"}, day_payload("BTCUSDT", "2023-01-05")[:100])
    replay.inject("binance", [cut] * 3)
    result = pull(replay, instance, "2023-01-05")
    assert not result.success
    text = failure_text(result)
    assert "BTCUSDT" in text and "on all 3 attempts" in text
    assert not (data_dir / "lake").exists()


def test_429_with_retry_after_and_500_are_retried_then_succeed(data_dir, replay, instance):
    """Rate limiting and server errors are retried; the partition then lands complete."""
    before = replay.request_count("binance")
    replay.inject(
        "binance",
        [
            Response.json({"code": -1003, "msg": "Too many requests."}, 429, {"Retry-After": "0"}),
            Response.json({"code": -1000, "msg": "An unknown error occurred."}, 500),
        ],
    )
    result = pull(replay, instance, "2023-01-05")
    assert result.success
    assert replay.request_count("binance") - before == 2 + 3
    table = pq.read_table(lake.raw_partition_path("binance", "klines_1h", "2023-01-05"))
    assert table.num_rows == 72
    btc = table.filter(pc.equal(table["symbol"], "BTCUSDT"))
    expected = json.loads(day_payload("BTCUSDT", "2023-01-05"))
    assert [format(v, "f") for v in btc["close"].to_pylist()] == [r[4] for r in expected]
