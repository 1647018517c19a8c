"""The capture service against the WebSocket replay (issue 17): minute rows and liquidations
exactly as computed here from the frames sent, across a forced disconnect and reconnect,
nothing duplicated; malformed frames quarantined; hours closed atomically.

Every frame here is SYNTHETIC, made in this test in the exchanges' exact formats: no
recording of Hyperliquid's ``candle`` or ``activeAssetCtx`` pushes at one-minute resolution,
or of Binance's ``forceOrder`` stream, exists in ``../shared/data`` (SOURCES.md: the one
real asset-context push is the ``allDexsAssetCtxs`` snapshot; no liquidation message was
found).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from mkt_platform.capture.frames import ASSET_CONTEXTS, CANDLES, LIQUIDATIONS, FrameViolation, parse
from mkt_platform.capture.service import (
    Capture,
    binance_liquidations_stream,
    hyperliquid_stream,
)
from mkt_platform.lib import lake
from mkt_platform.replay.ws import WebSocketReplay
from tests.test_alerts import receiver  # noqa: F401 (the webhook receiver fixture)

MINUTE = 60_000
#: 10:55 UTC: the eight simulated minutes cross the 11:00 hour boundary.
T0 = int(datetime(2026, 1, 5, 10, 55, tzinfo=UTC).timestamp() * 1000)
MINUTES = 8
DROP_AFTER = 4


def candle(coin: str, minute: int, update: int) -> dict:
    """SYNTHETIC: Hyperliquid's push of the current 1m candle, ``update`` of the minute."""
    t = T0 + minute * MINUTE
    base = Decimal(77000 + 10 * minute)
    return {
        "channel": "candle",
        "data": {
            "t": t,
            "T": t + MINUTE - 1,
            "s": coin,
            "i": "1m",
            "o": str(base),
            "c": str(base + update),
            "h": str(base + 5 + update),
            "l": str(base - 5),
            "v": str(Decimal("0.5") * (update + 1)),
            "n": 10 * (update + 1),
        },
    }


def asset_context(coin: str, minute: int, update: int) -> dict:
    """SYNTHETIC: Hyperliquid's ``activeAssetCtx`` push (no time of its own)."""
    return {
        "channel": "activeAssetCtx",
        "data": {
            "coin": coin,
            "ctx": {
                "funding": f"0.0000{125 + minute}",
                "openInterest": f"{27000 + minute}.{update}",
                "oraclePx": f"{77600 + minute}.0",
                "markPx": f"{77560 + minute}.{update}",
                "midPx": f"{77558 + minute}.5",
                "premium": "-0.0005927453",
                "prevDayPx": "76317.0",
                "dayNtlVlm": "1516669192.19",
                "impactPxs": ["77558.0", "77559.0"],
                "dayBaseVlm": "19707.77",
            },
        },
    }


def liquidation(symbol: str, minute: int, index: int) -> dict:
    """SYNTHETIC: Binance USD-M ``forceOrder`` event of ``!forceOrder@arr``."""
    trade_time = T0 + minute * MINUTE + 1000 * (index + 1)
    return {
        "e": "forceOrder",
        "E": trade_time + 7,
        "o": {
            "s": symbol,
            "S": "SELL" if index % 2 else "BUY",
            "o": "LIMIT",
            "f": "IOC",
            "q": f"0.{index + 1}00",
            "p": f"{9900 + minute}.10",
            "ap": f"{9901 + minute}.20",
            "X": "FILLED",
            "l": f"0.{index + 1}00",
            "z": f"0.{index + 1}00",
            "T": trade_time,
        },
    }


def minute_frames(minute: int) -> tuple[list[dict], list[dict]]:
    """The frames of one minute: three candle pushes and two context pushes of BTC, two
    liquidations of BTCUSDT and one of ETHUSDT."""
    hyperliquid = [candle("BTC", minute, u) for u in range(3)]
    hyperliquid += [asset_context("BTC", minute, u) for u in range(2)]
    binance = [liquidation("BTCUSDT", minute, i) for i in range(2)]
    binance.append(liquidation("ETHUSDT", minute, 2))
    return hyperliquid, binance


class Clock:
    """The receive time the test sets (asset contexts carry none of their own)."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def start(capture: Capture) -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(capture.run(),), daemon=True)
    thread.start()
    return loop, thread


def wait(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def read_hours(root: Path, dataset) -> dict[str, list[dict]]:
    """Every hour file of ``dataset``: ``{'date=.../hour=HH/part.parquet': rows}``."""
    base = root / "raw" / dataset.venue / dataset.name
    return {
        # lake.read_table: one open file, so a file replaced while it is read is read whole
        p.relative_to(base).as_posix(): lake.read_table(p).to_pylist()
        for p in sorted(base.glob("date=*/hour=*/*.parquet"))
    }


def ms(row_time) -> int:
    return int(row_time.timestamp() * 1000)


def test_a_capture_across_a_disconnect_gives_exactly_the_minutes_sent(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    clock = Clock()
    with WebSocketReplay() as hl, WebSocketReplay() as bn:
        capture = Capture(
            [hyperliquid_stream(hl.url, ("BTC",)), binance_liquidations_stream(bn.url)],
            root,
            clock=clock,
            reconnect_delays=lambda: iter([0.05] * 100),
        )
        loop, thread = start(capture)
        hl.wait_for_clients(1, subscriptions=2)
        bn.wait_for_clients(1)
        sent = {"hyperliquid": 0, "binance_liquidations": 0}

        def deliver(minute: int) -> None:
            clock.now = T0 + minute * MINUTE + 30_000
            frames_hl, frames_bn = minute_frames(minute)
            hl.send(frames_hl)
            bn.send(frames_bn)
            sent["hyperliquid"] += len(frames_hl)
            sent["binance_liquidations"] += len(frames_bn)
            wait(lambda: all(capture.states[k].messages == v for k, v in sent.items()))

        for minute in range(MINUTES):
            deliver(minute)
            if minute == DROP_AFTER:
                hl.drop()
                bn.drop()
                # reconnected, and the subscriptions sent again
                hl.wait_for_clients(1, subscriptions=4)
                bn.wait_for_clients(1)
                deliver(minute)  # an exchange may send the minute again after a resubscribe
        assert capture.states["hyperliquid"].connects == 2
        assert capture.states["binance_liquidations"].connects == 2
        loop.call_soon_threadsafe(capture.stop)
        thread.join(30)

    # What this test sent, computed here: the last candle push and the last context push of
    # each minute, every distinct liquidation once.
    expected_candles = [candle("BTC", m, 2)["data"] for m in range(MINUTES)]
    expected_contexts = [asset_context("BTC", m, 1)["data"]["ctx"] for m in range(MINUTES)]
    expected_liquidations = sorted(
        (frame["o"]["s"], frame["o"]["T"], frame["o"]["S"], Decimal(frame["o"]["z"]))
        for m in range(MINUTES)
        for frame in minute_frames(m)[1]
    )

    candles = read_hours(root, CANDLES)
    # 10:55..10:59 closed as hour 10; 11:00..11:02 still open in hour 11
    assert sorted(candles) == [
        "date=2026-01-05/hour=10/part.parquet",
        "date=2026-01-05/hour=11/open.parquet",
    ]
    got = [row for rows in candles.values() for row in rows]
    assert [ms(r["open_time"]) for r in got] == [c["t"] for c in expected_candles]
    for row, push in zip(got, expected_candles, strict=True):
        assert (row["open"], row["high"], row["low"], row["close"], row["volume"]) == tuple(
            Decimal(push[k]) for k in ("o", "h", "l", "c", "v")
        )
        assert row["trades"] == push["n"] and ms(row["close_time"]) == push["T"]

    contexts = [row for rows in read_hours(root, ASSET_CONTEXTS).values() for row in rows]
    assert [ms(r["minute"]) for r in contexts] == [T0 + m * MINUTE for m in range(MINUTES)]
    for row, ctx in zip(contexts, expected_contexts, strict=True):
        assert row["open_interest"] == Decimal(ctx["openInterest"])
        assert row["mark_price"] == Decimal(ctx["markPx"])
        assert row["funding"] == Decimal(ctx["funding"])

    liquidations = [row for rows in read_hours(root, LIQUIDATIONS).values() for row in rows]
    assert (
        sorted(
            (r["symbol"], ms(r["trade_time"]), r["side"], r["filled_quantity"])
            for r in liquidations
        )
        == expected_liquidations
    )  # minute 4's, sent twice, are there once
    assert capture.states["hyperliquid"].dropped == 0


def test_a_malformed_frame_is_quarantined_alerted_once_and_never_buffered(
    tmp_path: Path,
    monkeypatch,
    instance,
    receiver,  # noqa: F811 (test_alerts' fixture, imported above)
) -> None:
    """Two kinds of bad frame: each is quarantined, never buffered, and the schema-drift
    sensor alerts once per kind at the webhook, not again when more of the same arrive."""
    import dagster as dg

    from mkt_platform.definitions import build_definitions
    from mkt_platform.lib.alerts import AlertWebhook

    monkeypatch.setenv("MKT_DATA_DIR", str(tmp_path / "data"))
    bad = candle("BTC", 0, 0)
    bad["data"]["c"] = 77000.5  # a number where Hyperliquid sends a numeric string
    with pytest.raises(FrameViolation) as raised:
        parse("hyperliquid", bad, T0)
    assert raised.value.field == "c" and "hyperliquid" in str(raised.value)

    capture = Capture([hyperliquid_stream("ws://127.0.0.1:9", ("BTC",))], tmp_path / "lake")
    capture._handle("hyperliquid", json.dumps(bad), T0)
    capture._handle("hyperliquid", "{not json", T0)
    assert capture.states["hyperliquid"].quarantined == 2
    quarantined = sorted(
        (tmp_path / "data" / "lake" / "quarantine" / "hyperliquid_stream").glob("*.json")
    )
    assert len([p for p in quarantined if not p.name.endswith(".error.json")]) == 2
    capture.sink(CANDLES).flush()
    assert read_hours(tmp_path / "lake", CANDLES) == {}

    defs = build_definitions()
    drift = defs.resolve_sensor_def("schema_drift_sensor")
    resources = {"alert_webhook": AlertWebhook(url=receiver.url)}
    first = drift(dg.build_sensor_context(instance=instance, resources=resources))
    alerts = [json.loads(r.body) for r in receiver.requests]
    assert sorted(a["details"]["field"] for a in alerts) == ["(frame)", "c"]
    assert all(a["kind"] == "schema_drift" for a in alerts)
    for minute in range(1, 4):  # the same fault, three more times
        bad = candle("BTC", minute, 0)
        bad["data"]["c"] = 77000.5
        capture._handle("hyperliquid", json.dumps(bad), T0 + minute * MINUTE)
    drift(dg.build_sensor_context(instance=instance, resources=resources, cursor=first.cursor))
    assert len(receiver.requests) == 2  # nothing new: no second alert


def capture_process(tmp_path: Path, hl: WebSocketReplay, bn: WebSocketReplay):
    """``mkt-platform capture`` as a process, on the replays, for Hyperliquid's BTC perp."""
    import os
    import subprocess
    import sys

    universe = tmp_path / "instruments.yaml"
    universe.write_text(
        "instruments:\n"
        "  - {venue: hyperliquid, instrument: BTC, base: BTC, quote: USDC, market: perp}\n"
    )
    env = {
        **os.environ,
        "MKT_DATA_DIR": str(tmp_path / "data"),
        "MKT_INSTRUMENTS_FILE": str(universe),
        "MKT_CAPTURE_HYPERLIQUID_URL": hl.url,
        "MKT_CAPTURE_BINANCE_LIQUIDATIONS_URL": bn.url,
    }
    cli = Path(sys.executable).parent / "mkt-platform"
    return subprocess.Popen(
        [str(cli), "capture"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_a_killed_capture_loses_at_most_the_unflushed_minute_and_continues_the_hour(
    tmp_path: Path,
) -> None:
    """SIGKILL mid-hour (11:25-11:32), after minute 34 was flushed and while minute 35 was
    buffered: every file under its final name is whole (minutes 30-34), minute 35 is lost;
    the restarted process merges into the same open hour and, stopped with SIGTERM, flushes
    the rest: each minute once."""
    import signal

    lake_dir = tmp_path / "data" / "lake"
    hour_file = lake_dir / "raw" / "binance_futures" / "liquidations_stream" / "date=2026-01-05"

    def minutes_in_files() -> list[int]:
        rows = [r for rows in read_hours(lake_dir, LIQUIDATIONS).values() for r in rows]
        return sorted({(ms(r["trade_time"]) - T0) // MINUTE for r in rows})

    with WebSocketReplay() as hl, WebSocketReplay() as bn:
        first = capture_process(tmp_path, hl, bn)
        try:
            hl.wait_for_clients(1, subscriptions=2)
            bn.wait_for_clients(1)
            for minute in range(30, 36):
                bn.send(minute_frames(minute)[1])
            wait(lambda: minutes_in_files() == [30, 31, 32, 33, 34])
            first.send_signal(signal.SIGKILL)
            first.wait(30)
        finally:
            first.kill()
        files = sorted(
            p.relative_to(hour_file).as_posix() for p in hour_file.rglob("*") if p.is_file()
        )
        assert files == ["hour=11/open.parquet"], files  # no partial or temporary file
        assert minutes_in_files() == [30, 31, 32, 33, 34]  # 35 was not flushed: lost

        second = capture_process(tmp_path, hl, bn)
        try:
            bn.wait_for_clients(1)
            hl.wait_for_clients(1, subscriptions=4)
            for minute in range(35, 38):
                bn.send(minute_frames(minute)[1])
            wait(lambda: minutes_in_files() == [30, 31, 32, 33, 34, 35, 36])
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0
        finally:
            second.kill()
        log = second.stdout.read()
    assert "every buffered minute flushed" in log, log
    rows = [r for rows in read_hours(lake_dir, LIQUIDATIONS).values() for r in rows]
    expected = sorted(
        (f["o"]["s"], f["o"]["T"]) for m in range(30, 38) for f in minute_frames(m)[1]
    )
    assert sorted((r["symbol"], ms(r["trade_time"])) for r in rows) == expected


def test_a_silent_stream_raises_one_alert_at_the_webhook(
    tmp_path: Path,
    monkeypatch,
    receiver,  # noqa: F811 (test_alerts' fixture, imported above)
) -> None:
    """A capture started at 10:55 whose Hyperliquid stream never speaks and whose Binance
    stream speaks at 10:59, then stops (its last status, 10:59). At 11:05 nothing is silent
    for 15 minutes; at 11:12 the sensor POSTs one alert, for Hyperliquid, to a local webhook
    receiver; none on the next tick; at 11:15 one more: the status itself is 16 minutes old."""
    import dagster as dg

    from mkt_platform import settings
    from mkt_platform.capture.service import status_path
    from mkt_platform.defs.monitoring.capture import capture_silence_sensor
    from mkt_platform.lib.alerts import AlertWebhook

    monkeypatch.setenv("MKT_DATA_DIR", str(tmp_path / "data"))
    clock = Clock()
    with WebSocketReplay() as hl, WebSocketReplay() as bn:
        capture = Capture(
            [hyperliquid_stream(hl.url, ("BTC",)), binance_liquidations_stream(bn.url)],
            tmp_path / "lake",
            clock=clock,
            status_path=status_path(),
        )
        loop, thread = start(capture)
        hl.wait_for_clients(1, subscriptions=2)
        bn.wait_for_clients(1)
        clock.now = T0 + 4 * MINUTE  # 10:59: Binance speaks once; Hyperliquid never did
        bn.send(minute_frames(4)[1][:1])
        wait(lambda: capture.states["binance_liquidations"].messages == 1)
        loop.call_soon_threadsafe(capture.stop)  # writes the status, at 10:59
        thread.join(30)

    def tick(minutes_after_t0: int, cursor: str | None) -> dg.SensorResult:
        moment = datetime.fromtimestamp((T0 + minutes_after_t0 * MINUTE) / 1000, UTC)
        monkeypatch.setattr(settings, "utcnow", lambda: moment)
        context = dg.build_sensor_context(
            cursor=cursor, resources={"alert_webhook": AlertWebhook(url=receiver.url)}
        )
        return capture_silence_sensor(context)

    result = tick(10, None)  # 10 min after the start: nothing silent for 15 min yet
    assert receiver.requests == []
    result = tick(17, result.cursor)  # Hyperliquid never spoke: silent since the start
    assert [json.loads(r.body)["details"]["stream"] for r in receiver.requests] == ["hyperliquid"]
    alert = json.loads(receiver.requests[0].body)
    assert alert["kind"] == "capture_silence" and "silent for 17 min" in alert["summary"]
    result = tick(18, result.cursor)  # the same silence: no second alert
    assert len(receiver.requests) == 1
    tick(20, result.cursor)  # the status itself is 16 min old: the capture is not reporting
    assert len(receiver.requests) == 2
    assert "has not reported for 16 min" in json.loads(receiver.requests[1].body)["summary"]


def test_closed_hours_become_partitions_of_the_captured_assets(tmp_path: Path, monkeypatch) -> None:
    """The sensor records each closed hour once as a materialization of its hourly
    partition (with its row count), and again when a late row changed it."""
    import dagster as dg

    from mkt_platform import settings
    from mkt_platform.capture.sink import HourlySink
    from mkt_platform.defs.capture.definitions import capture_hours_sensor, hourly_partitions_def

    monkeypatch.setenv("MKT_DATA_DIR", str(tmp_path / "data"))
    sink = HourlySink(LIQUIDATIONS, settings.lake_dir())
    for minute in range(MINUTES):  # 10:55..11:02: hour 10 closes at 11:00
        for frame in minute_frames(minute)[1]:
            for _, row in parse("binance_liquidations", frame, T0):
                sink.add(row)

    def tick(cursor: str | None) -> dg.SensorResult:
        return capture_hours_sensor(dg.build_sensor_context(cursor=cursor))

    first = tick(None)
    assert [(e.asset_key.to_user_string(), e.partition) for e in first.asset_events] == [
        ("binance_futures_liquidations_stream", "2026-01-05-10:00")
    ]
    assert first.asset_events[0].metadata["dagster/row_count"].value == 5 * 3
    assert hourly_partitions_def().has_partition_key("2026-01-05-10:00")
    assert tick(first.cursor).asset_events == []  # nothing new
    time.sleep(0.01)
    sink.add(parse("binance_liquidations", liquidation("SOLUSDT", 4, 9), T0)[0][1])  # late, 10:59
    sink.flush(before=T0 + MINUTES * MINUTE)
    again = tick(first.cursor)
    assert [e.partition for e in again.asset_events] == ["2026-01-05-10:00"]
    assert again.asset_events[0].metadata["dagster/row_count"].value == 5 * 3 + 1


@pytest.mark.slow
def test_liquidations_hourly_sums_the_closed_hours_liquidations(
    tmp_path: Path, monkeypatch
) -> None:
    """The mart over the captured liquidations: per symbol and closed hour, the count,
    quantity and notional, longs (SELL) against shorts (BUY), equal to exact sums computed
    here from the frames; the hour still open is not in it."""
    import duckdb

    from mkt_platform import settings
    from mkt_platform.capture.sink import HourlySink
    from tests.test_options_marts import dbt

    data_dir = tmp_path / "data"
    monkeypatch.setenv("MKT_DATA_DIR", str(data_dir))
    sink = HourlySink(LIQUIDATIONS, settings.lake_dir())
    frames = [f for minute in range(MINUTES) for f in minute_frames(minute)[1]]
    for frame in frames:
        sink.add(parse("binance_liquidations", frame, T0)[0][1])
    sink.flush()  # 10:55-10:59 closed as hour 10; 11:00-11:02 open
    dbt(data_dir, "build", "--select", "+liquidations_hourly")
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute("select * from marts.liquidations_hourly order by instrument")
        names = [c[0] for c in cursor.description]
        rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]

    hour_10 = T0 - 55 * MINUTE
    closed = [f["o"] for f in frames if f["o"]["T"] < hour_10 + 60 * MINUTE]
    assert [r["instrument"] for r in rows] == ["BTCUSDT", "ETHUSDT"]
    for row in rows:
        mine = [o for o in closed if o["s"] == row["instrument"]]
        assert ms(row["hour"]) == hour_10
        notional = {o["T"]: Decimal(o["z"]) * Decimal(o["ap"]) for o in mine}
        assert row["liquidations"] == len(mine)
        assert row["quantity"] == sum(Decimal(o["z"]) for o in mine)
        assert row["notional_usd"] == sum(notional.values())
        longs = [o for o in mine if o["S"] == "SELL"]
        assert row["longs_liquidated"] == len(longs)
        assert row["longs_notional_usd"] == sum((notional[o["T"]] for o in longs), Decimal(0))
        assert row["shorts_liquidated"] == len(mine) - len(longs)
        assert row["longs_notional_usd"] + row["shorts_notional_usd"] == row["notional_usd"]


@pytest.mark.slow
def test_funding_and_open_interest_at_one_minute_are_the_last_context_of_each_minute(
    tmp_path: Path, monkeypatch
) -> None:
    """The mart over the captured contexts: per closed minute, the last context received in
    it, with open interest in USDC exact, computed here from the frames."""
    import duckdb

    from mkt_platform import settings
    from mkt_platform.capture.sink import HourlySink
    from tests.test_options_marts import dbt

    data_dir = tmp_path / "data"
    monkeypatch.setenv("MKT_DATA_DIR", str(data_dir))
    sink = HourlySink(ASSET_CONTEXTS, settings.lake_dir())
    for minute in range(MINUTES):
        for update in range(3):
            received = T0 + minute * MINUTE + 10_000 * update
            for _, row in parse("hyperliquid", asset_context("BTC", minute, update), received):
                sink.add(row)
    sink.flush()  # hour 10 (10:55-10:59) closed
    dbt(data_dir, "build", "--select", "+funding_open_interest_1m")
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute("select * from marts.funding_open_interest_1m order by minute")
        names = [c[0] for c in cursor.description]
        rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    assert [ms(r["minute"]) for r in rows] == [T0 + m * MINUTE for m in range(5)]
    for minute, row in enumerate(rows):
        ctx = asset_context("BTC", minute, 2)["data"]["ctx"]  # the minute's last push
        assert row["open_interest"] == Decimal(ctx["openInterest"])
        assert row["open_interest_usd"] == Decimal(ctx["openInterest"]) * Decimal(ctx["oraclePx"])
        assert row["funding_rate"] == Decimal(ctx["funding"])
        assert row["funding_rate_annualized"] == pytest.approx(float(ctx["funding"]) * 8760)


def test_a_stream_refused_for_good_is_logged_and_retried_while_the_others_go_on(
    tmp_path: Path, monkeypatch, caplog
) -> None:
    """A server that answers the WebSocket handshake with an HTTP 404 page (websockets does
    not retry that itself): the stream's task logs it and tries again, over and over; the
    other stream captures on."""
    import logging
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from mkt_platform.capture import service

    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, *args: object) -> None:
            pass

    monkeypatch.setattr(service, "RETRY_AFTER_FATAL_SECONDS", 0.05)
    http = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    caplog.set_level(logging.ERROR, logger="mkt_platform.capture")
    try:
        with WebSocketReplay() as bn:
            capture = Capture(
                [
                    hyperliquid_stream(f"ws://127.0.0.1:{http.server_address[1]}", ("BTC",)),
                    binance_liquidations_stream(bn.url),
                ],
                tmp_path / "lake",
            )
            loop, thread = start(capture)
            bn.wait_for_clients(1)
            bn.send(minute_frames(0)[1])
            wait(lambda: capture.states["binance_liquidations"].messages == 3)
            wait(lambda: len([r for r in caplog.records if "hyperliquid" in r.getMessage()]) >= 2)
            loop.call_soon_threadsafe(capture.stop)
            thread.join(30)
    finally:
        http.shutdown()
    assert capture.states["hyperliquid"].connects == 0
    # websockets reads the 404 page as no valid handshake answer: refused for good
    assert "capture hyperliquid: Invalid" in caplog.records[0].getMessage()
    assert len(read_hours(tmp_path / "lake", LIQUIDATIONS)) == 1  # flushed at the stop
