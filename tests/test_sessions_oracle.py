"""The daily session mart against Binance's own numbers and an independent computation.

With the anchor at 00:00 UTC a daily session is a UTC day, which Binance itself aggregates
as the 1d kline: the mart, built from 1h klines, must reproduce it. With the default anchor
(08:00 UTC) the mart is checked against a computation from the hourly klines written here,
in Decimal, from the metric definitions.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from mkt_platform import cli
from tests.conftest import (
    SHARED_DATA,
    SYMBOLS,
    materialize_days,
    read_sessions,
    recorded_klines,
    rel_close,
)

pytestmark = pytest.mark.slow
HALT_DAY = datetime(2023, 3, 24, tzinfo=UTC)


def daily_oracle() -> dict[tuple[str, datetime], list]:
    return {
        (symbol, datetime.fromtimestamp(row[0] / 1000, UTC)): row
        for symbol in SYMBOLS
        for row in recorded_klines(symbol, "1d")
    }


def assert_equals_daily_klines(sessions: list[dict]) -> None:
    oracle = daily_oracle()
    for s in sessions:
        kline = oracle[(s["instrument"], s["session_start"])]
        where = f"{s['instrument']} {s['session_start']:%Y-%m-%d}"
        assert s["open"] == Decimal(kline[1]), where
        assert s["high"] == Decimal(kline[2]), where
        assert s["low"] == Decimal(kline[3]), where
        assert s["close"] == Decimal(kline[4]), where
        assert rel_close(s["volume"], Decimal(kline[5])), where
        assert rel_close(s["quote_volume"], Decimal(kline[7])), where
        assert rel_close(Decimal(s["trades"]), Decimal(kline[8])), where
        assert s["session_end"] - s["session_start"] == timedelta(hours=24)


def test_half_year_of_utc_sessions_equals_binance_daily_klines(
    data_dir, hourly_universe, instance, monkeypatch
):
    """Guards the whole chain (pull, Parquet, staging, session mart) against any loss or
    rounding: every session of three symbols over 181 days equals Binance's 1d kline."""
    monkeypatch.setenv("MKT_SESSION_ANCHOR_HOUR", "0")
    # The candle venues only: 1m klines, funding and option trades feed no session.
    only = ("binance_klines_1h", "hyperliquid_candles_1h")
    results = materialize_days(date(2023, 1, 1), date(2023, 6, 30), instance, only=only)
    assert results and all(r.success for r in results)

    sessions = read_sessions(data_dir, "source = 'binance'")
    assert len(sessions) == 3 * 181
    assert_equals_daily_klines(sessions)
    # the recorded Hyperliquid kPEPE candles (2023-05-21/22) share the mart, apart by source
    others = read_sessions(data_dir, "source <> 'binance'")
    assert {(s["source"], s["instrument"]) for s in others} == {("hyperliquid", "kPEPE")}
    incomplete = {(s["instrument"], s["session_start"]) for s in sessions if not s["is_complete"]}
    assert incomplete == {(symbol, HALT_DAY) for symbol in SYMBOLS}
    for s in sessions:
        expected_count = 23 if s["session_start"] == HALT_DAY else 24
        assert (s["candle_count"], s["expected_candle_count"]) == (expected_count, 24)


def test_cli_week_end_to_end_matches_daily_klines(data_dir, monkeypatch, tmp_path, capsys):
    """The README's main command, for one week, through the console entry point with its own
    replay server: exit code 0 and sessions equal to Binance's 1d klines."""
    monkeypatch.setenv("MKT_SESSION_ANCHOR_HOUR", "0")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    monkeypatch.delenv("BINANCE_BASE_URL")
    code = cli.main(
        [
            "materialize",
            "--start",
            "2023-01-02",
            "--end",
            "2023-01-08",
            "--replay",
            str(SHARED_DATA),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    # dbt's lines (one per model and test) are in the run's log file, not on the terminal.
    assert " PASS " not in out and "START sql" not in out
    (log,) = re.findall(r"^dbt log:\s+(\S+)$", out, re.MULTILINE)
    dbt_lines = Path(log).read_text()
    assert "PASS" in dbt_lines and "session_ohlc_daily" in dbt_lines
    # the session table: 7 sessions of BTCUSDT, the latest starting on 2023-01-08
    assert re.search(r"^binance\s+BTCUSDT\s+7\s+2023-01-08 \d\d:00\s", out, re.MULTILINE), out
    sessions = read_sessions(data_dir)
    assert len(sessions) == 21
    assert all(s["is_complete"] for s in sessions)
    assert_equals_daily_klines(sessions)


def pct(value: Decimal, base: Decimal) -> Decimal:
    return ((value - base) / base * 100).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def independent_sessions(symbol: str, first: datetime, count: int, anchor: int) -> list[dict]:
    """Sessions computed here from the recorded hourly klines, straight from the definitions."""
    hourly = {datetime.fromtimestamp(r[0] / 1000, UTC): r for r in recorded_klines(symbol, "1h")}
    sessions = []
    for day in range(count):
        start = first + timedelta(days=day, hours=anchor)
        slots = [(i, hourly.get(start + timedelta(hours=i))) for i in range(24)]
        candles = [(i, r) for i, r in slots if r is not None]
        open_, close = Decimal(candles[0][1][1]), Decimal(candles[-1][1][4])
        high = max(Decimal(r[2]) for _, r in candles)
        low = min(Decimal(r[3]) for _, r in candles)
        high_at = next(i for i, r in candles if Decimal(r[2]) == high)
        low_at = next(i for i, r in candles if Decimal(r[3]) == low)
        chhigh, chlow = pct(high, open_), pct(low, open_)
        up, down = high - open_, open_ - low
        if high_at != low_at:
            first_extreme = "HIGH" if high_at < low_at else "LOW"
        else:
            first_extreme = "HIGH" if up >= down else "LOW"
        sessions.append(
            {
                "session_start": start,
                "open": open_,
                "high": high,
                "low": low,
                "close": close,
                "volume": sum(Decimal(r[5]) for _, r in candles),
                "quote_volume": sum(Decimal(r[7]) for _, r in candles),
                "trades": sum(r[8] for _, r in candles),
                "move": high - low,
                "chhigh": chhigh,
                "chlow": chlow,
                "chclose": pct(close, open_),
                "chmax": chhigh if up > down else chlow,
                "chhightime": high_at,
                "chlowtime": low_at,
                "firstextremumtype": first_extreme,
                "candle_count": len(candles),
                "is_complete": len(candles) == 24,
            }
        )
    return sessions


def test_default_anchor_sessions_equal_independent_computation(data_dir, instance):
    """Guards the 08:00 session cut and every derived metric (percent changes exact to the
    4th decimal, extremum indices and order, tie rules) over the week of the 2023-03-24
    halt, whose session 2023-03-24 08:00 has 23 candles."""
    results = materialize_days(
        date(2023, 3, 20), date(2023, 3, 26), instance, only=("binance_klines_1h",)
    )
    assert results and all(r.success for r in results)
    by_key = {(s["instrument"], s["session_start"]): s for s in read_sessions(data_dir)}
    assert len(by_key) == 3 * 7
    for symbol in SYMBOLS:
        for expected in independent_sessions(symbol, datetime(2023, 3, 20, tzinfo=UTC), 7, 8):
            actual = by_key[(symbol, expected["session_start"])]
            for column, value in expected.items():
                assert actual[column] == value, (symbol, expected["session_start"], column)
    halt = by_key[("BTCUSDT", datetime(2023, 3, 24, 8, tzinfo=UTC))]
    assert (halt["candle_count"], halt["is_complete"]) == (23, False)
