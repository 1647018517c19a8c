"""Realized volatility (marts.realized_volatility_daily and realized_volatility_rolling)
against an independent computation written here, in numpy, from the 1h candles in the lake.

The data: Binance's real 1h klines of BTCUSDT, ETHUSDT and SOLUSDT from the replay of
../shared/data/binance/klines_*_1h_2023-03.json (sessions 2023-03-14..27, with the
2023-03-24 trading halt, whose session is incomplete) and klines_*_1h_2024-04.json
(sessions 2024-04-02..05), pulled and built through Dagster as the main job does.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.conftest import materialize_days, write_hourly_universe

pytestmark = pytest.mark.slow

HOURS_PER_YEAR = 365 * 24
ESTIMATORS = ("close_to_close", "parkinson", "garman_klass", "rogers_satchell", "yang_zhang")
RANGES = ((date(2023, 3, 14), date(2023, 3, 27)), (date(2024, 4, 2), date(2024, 4, 5)))


def session_of(open_time: datetime) -> datetime:
    """The daily session (08:00 UTC to 08:00 UTC) a candle opening at ``open_time`` is in."""
    shifted = open_time - timedelta(hours=8)
    return datetime(shifted.year, shifted.month, shifted.day, 8, tzinfo=UTC)


def lake_candles(data_dir) -> dict[tuple[str, datetime], list[tuple]]:
    """The 1h candles in the lake, per (instrument, session), by open time, as floats."""
    sessions: dict[tuple[str, datetime], list[tuple]] = defaultdict(list)
    for path in sorted((data_dir / "lake" / "raw" / "binance" / "klines_1h").glob("*/*.parquet")):
        table = pq.read_table(path).to_pylist()
        for row in table:
            t = row["open_time"].astimezone(UTC)
            sessions[(row["symbol"], session_of(t))].append(
                (t, float(row["open"]), float(row["high"]), float(row["low"]), float(row["close"]))
            )
    return {k: sorted(v) for k, v in sessions.items()}


def expected_session(candles: list[tuple]) -> dict[str, float | None]:
    """The five estimators of one session, from their published formulas (see the model's
    yml): hourly variances annualized by 8760; returns and opening jumps only between
    consecutive candles (one hour apart); sample variances for close-to-close and Yang-Zhang's
    parts, means for the range estimators."""
    t = [c[0] for c in candles]
    o, h, lo, c = (np.array([x[i] for x in candles]) for i in (1, 2, 3, 4))
    n = len(candles)
    consecutive = [i for i in range(1, n) if t[i] - t[i - 1] == timedelta(hours=1)]
    r = np.array([math.log(c[i] / c[i - 1]) for i in consecutive])
    jumps = np.array([math.log(o[i] / c[i - 1]) for i in consecutive])
    oc = np.log(c / o)
    hl = np.log(h / lo)
    rs = np.log(h / c) * np.log(h / o) + np.log(lo / c) * np.log(lo / o)

    def vol(variance: float | None) -> float | None:
        if variance is None or math.isnan(variance) or variance < 0:
            return None
        return math.sqrt(variance * HOURS_PER_YEAR)

    var_rs = float(np.mean(rs))
    yang_zhang = None
    if n > 1 and len(jumps) > 1:
        k = 0.34 / (1.34 + (n + 1) / (n - 1))
        yang_zhang = float(np.var(jumps, ddof=1) + k * np.var(oc, ddof=1) + (1 - k) * var_rs)
    return {
        "close_to_close": vol(float(np.var(r, ddof=1)) if len(r) > 1 else None),
        "parkinson": vol(float(np.sum(hl**2) / (4 * n * math.log(2)))),
        "garman_klass": vol(float(np.mean(0.5 * hl**2 - (2 * math.log(2) - 1) * oc**2))),
        "rogers_satchell": vol(var_rs),
        "yang_zhang": vol(yang_zhang),
        "candle_count": n,
        "return_count": len(r),
    }


def assert_close(got: float | None, want: float | None, what: str) -> None:
    if want is None:
        assert got is None, what
        return
    assert got is not None and abs(got - want) <= 1e-12 * abs(want), (what, got, want)


@pytest.fixture(scope="module")
def built(tmp_path_factory, replay):
    """The lake and warehouse of both ranges (a module fixture: built once)."""
    import dagster as dg

    monkeypatch = pytest.MonkeyPatch()
    data_dir = tmp_path_factory.mktemp("rv") / "data"
    hourly = write_hourly_universe(
        tmp_path_factory.mktemp("rv_universe") / "hourly.yaml", ("binance",)
    )
    env = {
        "MKT_DATA_DIR": str(data_dir),
        "MKT_INSTRUMENTS_FILE": str(hourly),
        "BINANCE_BASE_URL": replay.base_url("binance"),
        "HYPERLIQUID_BASE_URL": replay.base_url("hyperliquid"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MKT_SESSION_ANCHOR_HOUR", raising=False)
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            for start, end in RANGES:
                results = materialize_days(start, end, instance, only=("binance_klines_1h",))
                assert all(r.success for r in results), [r.failed for r in results]
        yield data_dir
    finally:
        monkeypatch.undo()


def read(data_dir, relation: str) -> list[dict]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute(f"select * from marts.{relation} order by instrument, session_start")
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_each_estimator_equals_an_independent_computation(built):
    sessions = lake_candles(built)
    rows = read(built, "realized_volatility_daily")
    keys = {(r["instrument"], r["session_start"].astimezone(UTC)) for r in rows}
    # Every session of both ranges, for the three instruments, and nothing else.
    wanted = {
        (symbol, datetime(d.year, d.month, d.day, 8, tzinfo=UTC))
        for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT")
        for start, end in RANGES
        for d in (start + timedelta(days=i) for i in range((end - start).days + 1))
    }
    assert keys == wanted
    incomplete = set()
    for row in rows:
        key = (row["instrument"], row["session_start"].astimezone(UTC))
        want = expected_session(sessions[key])
        for estimator in ESTIMATORS:
            assert_close(row[f"rv_{estimator}"], want[estimator], (key, estimator))
        assert row["candle_count"] == want["candle_count"]
        assert row["return_count"] == want["return_count"]
        assert row["is_complete"] == (want["candle_count"] == 24)
        assert row["session_end"] - row["session_start"] == timedelta(hours=24)
        if not row["is_complete"]:
            incomplete.add(key)
    # The 2023-03-24 halt: that session lacks candles, and is flagged, not dropped.
    halt = datetime(2023, 3, 24, 8, tzinfo=UTC)
    assert {k[1] for k in incomplete} == {halt}
    # A sanity bound a trader would recognize: BTC's daily realized vol in March 2023 was tens
    # of percent annualized, not 0.004 or 40.
    btc = [r["rv_close_to_close"] for r in rows if r["instrument"] == "BTCUSDT"]
    assert all(0.05 < v < 3 for v in btc)


def test_rolling_windows_use_only_complete_sessions(built):
    daily = {
        (r["instrument"], r["session_start"].astimezone(UTC)): r
        for r in read(built, "realized_volatility_daily")
    }
    rows = read(built, "realized_volatility_rolling")
    assert len(rows) == len(daily)
    reported = 0
    for row in rows:
        end = row["session_start"].astimezone(UTC)
        for days in (7, 30, 90):
            window = [daily.get((row["instrument"], end - timedelta(days=i))) for i in range(days)]
            complete = [w for w in window if w is not None and w["is_complete"]]
            assert row[f"complete_sessions_{days}d"] == len(complete)
            for estimator in ESTIMATORS:
                got = row[f"rv_{estimator}_{days}d"]
                values = [w[f"rv_{estimator}"] for w in complete]
                if len(complete) < days or any(v is None for v in values):
                    assert got is None, (row["instrument"], end, days, estimator)
                    continue
                want = math.sqrt(sum(v * v for v in values) / days)
                assert_close(got, want, (row["instrument"], end, days, estimator))
                reported += 1
    # The 2023 range holds 7-session windows with every session complete (reported) and
    # windows over the halt (NULL): both branches were exercised.
    assert reported >= 3 * 4 * len(ESTIMATORS)
