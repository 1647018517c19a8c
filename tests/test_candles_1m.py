"""One-minute candles from the capture and its REST backfill (issue 17), through Dagster: the
capture closes hours, capture_hours_sensor records them, capture_gap_sensor requests the REST
pull (``candleSnapshot``, 1m) of each day whose closed hours lost minutes, automation builds
``candles_1m`` day by day, and the mart merges both by Kirby's rule: a REST value replaces a
captured one, never with NULL.

SYNTHETIC data: no recording of Hyperliquid 1m candles, REST or stream, exists in
``../shared/data`` (SOURCES.md: the only Hyperliquid candles recorded are 1h). The REST side is
a SYNTHETIC ``candleSnapshot`` file (:mod:`mkt_platform.testing.synthetic_hyperliquid`, whose
name says SYNTHETIC) that the replay serves, its answers rewritten to send five minutes
without a trade count (``n`` null, which the REST contract accepts); the stream side is
``candle`` pushes made here in Hyperliquid's exact format.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from mkt_platform import settings
from mkt_platform.capture.frames import CANDLES, parse
from mkt_platform.capture.sink import HourlySink
from mkt_platform.replay.hyperliquid import HyperliquidHandler
from mkt_platform.replay.server import ReplayServer
from mkt_platform.testing.synthetic_hyperliquid import write_synthetic_candles
from tests.conftest import SHARED_DATA

MINUTE = 60_000


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


#: The platform's now: 2026-01-05 12:30 UTC, within the REST reach of every captured hour.
NOW = datetime(2026, 1, 5, 12, 30, tzinfo=UTC)
#: The SYNTHETIC REST candles: 2026-01-04 23:00 .. 2026-01-05 12:29.
REST_FIRST, REST_LAST = ms(datetime(2026, 1, 4, 23, tzinfo=UTC)), ms(NOW) - MINUTE
#: Minutes whose REST candle has no trade count (null): the captured count must stay.
NULL_TRADES = {ms(datetime(2026, 1, 5, 10, 30 + i, tzinfo=UTC)) for i in range(5)}


def captured_minutes() -> list[int]:
    """The minutes the capture received: 2026-01-04 23:58 .. 2026-01-05 00:01 (then the
    capture was down until 10:00), 10:00 .. 12:00 but for 10:20 .. 10:24 (a disconnect)."""
    runs = [
        (datetime(2026, 1, 4, 23, 58, tzinfo=UTC), 4),
        (datetime(2026, 1, 5, 10, tzinfo=UTC), 121),
    ]
    gap = range(
        ms(datetime(2026, 1, 5, 10, 20, tzinfo=UTC)),
        ms(datetime(2026, 1, 5, 10, 25, tzinfo=UTC)),
        MINUTE,
    )
    return [
        ms(start) + i * MINUTE
        for start, n in runs
        for i in range(n)
        if ms(start) + i * MINUTE not in gap
    ]


def push(t: int, update: int) -> dict:
    """SYNTHETIC: Hyperliquid's ``candle`` push of BTC's minute ``t``, ``update`` of it."""
    base = Decimal(90000) + Decimal((t // MINUTE) % 1000)
    return {
        "channel": "candle",
        "data": {
            "t": t,
            "T": t + MINUTE - 1,
            "s": "BTC",
            "i": "1m",
            "o": str(base),
            "c": str(base + update),
            "h": str(base + 3 + update),
            "l": str(base - 3),
            "v": str(Decimal("0.25") * (update + 1)),
            "n": 7 * (update + 1),
        },
    }


def rest_candles(folder: Path) -> dict[int, dict]:
    """Write the SYNTHETIC REST file; its candles by open time, as the replay will answer
    them (see :func:`null_trades`)."""
    path = write_synthetic_candles(
        folder, "BTC", "1m", REST_FIRST, REST_LAST, seed=11, start_price="91000"
    )
    candles = {c["t"]: c for c in json.loads(path.read_text())}
    for t in NULL_TRADES:
        candles[t] = {**candles[t], "n": None}
    return candles


def null_trades(_request, payload):
    """The replay's answers rewritten: the candles of NULL_TRADES without a trade count."""
    return [{**c, "n": None} if c["t"] in NULL_TRADES else c for c in payload]


FIELDS = {"open": "o", "high": "h", "low": "l", "close": "c", "volume": "v", "trades": "n"}


def expected_rows(
    rest: dict[int, dict], stream: dict[int, dict], day_start: int
) -> dict[int, dict]:
    """Kirby's rule, written here from the frames and the REST file: per field the REST
    value where it is not null, the captured one otherwise."""
    rows = {}
    for t in sorted(set(rest) | set(stream)):
        if not day_start <= t < day_start + 1440 * MINUTE:
            continue
        r, s = rest.get(t), stream.get(t)
        row = {}
        for column, key in FIELDS.items():
            value = r[key] if r is not None and r[key] is not None else s[key]
            row[column] = value if column == "trades" else Decimal(value)
        row["origin"] = "stream+rest" if r and s else ("rest" if r else "stream")
        rows[t] = row
    return rows


@pytest.mark.slow
def test_captured_minutes_and_the_rest_backfill_merge_by_kirbys_rule(
    tmp_path: Path, monkeypatch, instance
) -> None:
    from mkt_platform.definitions import build_definitions
    from mkt_platform.defs.hyperliquid.datasets import CANDLES_1M
    from tests.test_weekly_monthly_sessions import requested_by

    synthetic = tmp_path / "synthetic"
    rest = rest_candles(synthetic)
    universe = tmp_path / "instruments.yaml"
    universe.write_text(
        "instruments:\n  - {venue: hyperliquid, instrument: BTC, base: BTC, quote: USDC, "
        "market: perp, intervals: [1m]}\n"
    )
    data_dir = tmp_path / "data"
    monkeypatch.setenv("MKT_DATA_DIR", str(data_dir))
    monkeypatch.setenv("MKT_INSTRUMENTS_FILE", str(universe))
    monkeypatch.setattr(settings, "utcnow", lambda: NOW)
    handler = HyperliquidHandler(SHARED_DATA / "hyperliquid", synthetic_dir=synthetic)
    with ReplayServer(SHARED_DATA, handlers={"hyperliquid": handler}) as replay:
        monkeypatch.setenv("HYPERLIQUID_BASE_URL", replay.base_url("hyperliquid"))
        replay.mutate("hyperliquid", null_trades)

        # The capture: two pushes a minute, but the minute before the disconnect (10:19) got
        # only its first; 12:00 arrives, so the hours up to 11:00 are closed.
        sink = HourlySink(CANDLES, settings.lake_dir())
        last_push: dict[int, dict] = {}
        cut_short = ms(datetime(2026, 1, 5, 10, 19, tzinfo=UTC))
        for t in captured_minutes():
            for update in range(1 if t == cut_short else 2):
                frame = push(t, update)
                last_push[t] = frame["data"]
                for _, row in parse("hyperliquid", frame, t):
                    sink.add(row)
        stream = {
            t: p for t, p in last_push.items() if t < ms(datetime(2026, 1, 5, 12, tzinfo=UTC))
        }

        defs = build_definitions()
        # automation's first tick, before any hour is recorded: nothing to do yet
        baseline = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, evaluation_time=NOW
        )
        assert baseline.total_requested == 0
        hours = defs.resolve_sensor_def("capture_hours_sensor")(dg.build_sensor_context())
        assert sorted(e.partition for e in hours.asset_events) == [
            "2026-01-04-23:00",
            "2026-01-05-00:00",
            "2026-01-05-10:00",
            "2026-01-05-11:00",
        ]
        for event in hours.asset_events:
            instance.report_runless_asset_event(event)

        # The gap sensor asks the REST pull for both days that lost minutes, once.
        gap_sensor = defs.resolve_sensor_def("capture_gap_sensor")
        gaps = gap_sensor(dg.build_sensor_context(instance=instance))
        assert [(r.partition_key, r.tags["mkt/reason"]) for r in gaps.run_requests] == [
            ("2026-01-04", "capture_gap"),
            ("2026-01-05", "capture_gap"),
        ]
        assert not gap_sensor(
            dg.build_sensor_context(instance=instance, cursor=gaps.cursor)
        ).run_requests
        for request in gaps.run_requests:
            pulled = dg.materialize(
                [defs.get_assets_def(CANDLES_1M.key)],
                partition_key=request.partition_key,
                resources=defs.resources,
                instance=instance,
                tags=request.tags,
            )
            assert pulled.success

        # Automation builds candles_1m for both days, tick after tick (staging, then the
        # mart), each day its own run, although neither day has all 24 hours captured.
        cursor, built = baseline.cursor, set()
        for _ in range(4):
            tick = dg.evaluate_automation_conditions(
                defs=defs, instance=instance, evaluation_time=NOW, cursor=cursor
            )
            cursor, requested = tick.cursor, requested_by(tick, defs)
            if not requested:
                break
            built |= requested
            for day in sorted({pk for _, pk in requested}):
                run = dg.materialize(
                    list(defs.assets),
                    selection=dg.AssetSelection.assets(*{n for n, pk in requested if pk == day}),
                    partition_key=day,
                    resources=defs.resources,
                    instance=instance,
                )
                assert run.success
        assert {("candles_1m", "2026-01-04"), ("candles_1m", "2026-01-05")} <= built

    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute("select * from marts.candles_1m order by open_time")
        names = [c[0] for c in cursor.description]
        mart = {
            ms(r["open_time"]): r
            for r in (dict(zip(names, row, strict=True)) for row in cursor.fetchall())
        }

    expected = {}
    for day in (datetime(2026, 1, 4, tzinfo=UTC), datetime(2026, 1, 5, tzinfo=UTC)):
        expected |= expected_rows(rest, stream, ms(day))
    # Both days are there: the second day's run did not replace the first's rows.
    assert sorted(mart) == sorted(expected)
    assert len(mart) == 60 + 750
    for t, row in expected.items():
        assert {k: mart[t][k] for k in row} == row, datetime.fromtimestamp(t / 1000, UTC)
    # The rule's three cases, named: a gap filled by REST, a minute cut short completed by
    # REST, and a REST null that kept the captured trade count.
    gap_minute = ms(datetime(2026, 1, 5, 10, 22, tzinfo=UTC))
    assert mart[gap_minute]["origin"] == "rest"
    assert (
        mart[cut_short]["close"] == Decimal(rest[cut_short]["c"]) != Decimal(stream[cut_short]["c"])
    )
    for t in NULL_TRADES:
        assert mart[t]["trades"] == stream[t]["n"] == 14
        assert mart[t]["close"] == Decimal(rest[t]["c"])


def test_a_gap_beyond_the_rest_reach_is_reported_not_requested(tmp_path: Path, monkeypatch) -> None:
    """Hyperliquid serves only its last 5,000 1m candles (3 days 11 h 20 min): past that,
    the captured hours' gaps cannot be recovered; the sensor says which and requests nothing."""
    from mkt_platform.defs.capture.definitions import capture_gap_sensor

    universe = tmp_path / "instruments.yaml"
    universe.write_text(
        "instruments:\n  - {venue: hyperliquid, instrument: BTC, base: BTC, quote: USDC, "
        "market: perp, intervals: [1m]}\n"
    )
    monkeypatch.setenv("MKT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MKT_INSTRUMENTS_FILE", str(universe))
    sink = HourlySink(CANDLES, settings.lake_dir())
    for t in captured_minutes():
        for _, row in parse("hyperliquid", push(t, 0), t):
            sink.add(row)
    # at 2026-01-08 22:21 the oldest 1m candle served opens at 2026-01-05 11:01: the 10:00
    # hour's gap is out of reach, and so are the two hours around midnight (11:00 is whole)
    monkeypatch.setattr(settings, "utcnow", lambda: datetime(2026, 1, 8, 22, 21, tzinfo=UTC))
    result = capture_gap_sensor(dg.build_sensor_context())
    assert not result.run_requests
    assert result.skip_reason.skip_message.endswith(
        "3 closed hour(s) beyond Hyperliquid's REST reach (its last 5,000 1m candles), not "
        "recoverable: 2026-01-04 23:00, 2026-01-05 00:00, 2026-01-05 10:00"
    )
    # at 21:20 the oldest candle served opens at 10:00: that hour can still be made whole
    monkeypatch.setattr(settings, "utcnow", lambda: datetime(2026, 1, 8, 21, 20, tzinfo=UTC))
    again = capture_gap_sensor(dg.build_sensor_context())
    assert [r.partition_key for r in again.run_requests] == ["2026-01-05"]
