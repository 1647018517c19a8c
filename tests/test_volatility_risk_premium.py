"""volatility_risk_premium_daily against a computation written here from the recordings:
Deribit's daily DVOL of BTC and ETH (shared/data/deribit/dvol_{BTC,ETH}_1D_2021-03-24_to_
2026-04-06.csv) and realized volatility recomputed in numpy from Binance's real 1h klines of
BTCUSDT and ETHUSDT (shared/data/binance/klines_*_1h_2023-0{1,2,3}.json), both pulled through
the replay and built by the platform for the days 2023-01-01..2023-03-05.
"""

from __future__ import annotations

import csv
import math
from datetime import UTC, date, datetime, timedelta

import duckdb
import numpy as np
import pytest
import yaml

from tests.conftest import SHARED_DATA, assert_nothing_clipped, materialize_days
from tests.test_realized_volatility import lake_candles

pytestmark = pytest.mark.slow

START, END = date(2023, 1, 1), date(2023, 3, 5)
HOURS_PER_YEAR = 365 * 24


def dvol_closes(currency: str) -> dict[date, float]:
    path = SHARED_DATA / "deribit" / f"dvol_{currency}_1D_2021-03-24_to_2026-04-06.csv"
    with path.open(newline="") as handle:
        return {date.fromisoformat(r["date"]): float(r["close"]) for r in csv.DictReader(handle)}


def session_variance(candles: list[tuple]) -> float | None:
    """A complete session's annualized close-to-close variance: the sample variance of its
    hourly log returns between consecutive candles, times 8760; None when incomplete."""
    if len(candles) != 24:
        return None
    closes = np.array([c[4] for c in candles])
    return float(np.var(np.diff(np.log(closes)), ddof=1)) * HOURS_PER_YEAR


def realized_30(variances: dict[datetime, float | None], first: datetime) -> float | None:
    """Realized volatility over the 30 sessions starting at ``first``: the root of the mean of
    their variances, None unless all 30 are there and complete."""
    window = [variances.get(first + timedelta(days=i)) for i in range(30)]
    if any(v is None for v in window):
        return None
    return math.sqrt(sum(window) / 30)


@pytest.fixture(scope="module")
def built_and_instance(tmp_path_factory, replay):
    import dagster as dg

    monkeypatch = pytest.MonkeyPatch()
    data_dir = tmp_path_factory.mktemp("vrp") / "data"
    universe = tmp_path_factory.mktemp("vrp_universe") / "instruments.yaml"
    universe.write_text(
        yaml.safe_dump(
            {
                "instruments": [
                    *(
                        {"venue": "binance", "instrument": f"{base}USDT", "base": base}
                        | {"quote": "USDT", "market": "spot", "intervals": ["1h"]}
                        for base in ("BTC", "ETH")
                    ),
                    *(
                        {"venue": "deribit", "instrument": base, "base": base, "quote": "USD"}
                        | {"market": "option", "intervals": []}
                        # ETH's DVOL alone: the options marts hold one currency's trades
                        | ({"option_trades": False} if base == "ETH" else {})
                        for base in ("BTC", "ETH")
                    ),
                ]
            }
        )
    )
    env = {
        "MKT_DATA_DIR": str(data_dir),
        "MKT_INSTRUMENTS_FILE": str(universe),
        "BINANCE_BASE_URL": replay.base_url("binance"),
        "DERIBIT_BASE_URL": replay.base_url("deribit"),
        "DERIBIT_HISTORY_BASE_URL": replay.base_url("deribit_history"),
        "MKT_CHARTS": "1",  # the charts on the materializations are tested here
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MKT_SESSION_ANCHOR_HOUR", raising=False)
    try:
        with dg.DagsterInstance.ephemeral() as instance:
            results = materialize_days(
                START, END, instance, only=("binance_klines_1h", "deribit_volatility_index")
            )
            assert all(r.success for r in results), [r.failed for r in results]
            yield data_dir, instance
    finally:
        monkeypatch.undo()


@pytest.fixture(scope="module")
def built(built_and_instance):
    return built_and_instance[0]


def query(data_dir, sql: str) -> list[dict]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute(sql)
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def test_premium_equals_dvol_against_realized_computed_here(built):
    with duckdb.connect(str(built / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute(
            "select * from marts.volatility_risk_premium_daily order by currency, day"
        )
        names = [c[0] for c in cursor.description]
        rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    sessions = lake_candles(built)
    variances = {
        symbol: {start: session_variance(c) for (s, start), c in sessions.items() if s == symbol}
        for symbol in ("BTCUSDT", "ETHUSDT")
    }
    days = [START + timedelta(days=i) for i in range((END - START).days + 1)]
    assert [(r["currency"], r["day"]) for r in rows] == [
        (currency, day) for currency in ("BTC", "ETH") for day in days
    ]
    trailing_seen = forward_seen = 0
    for row in rows:
        currency, day = row["currency"], row["day"]
        implied = dvol_closes(currency)[day] / 100
        assert abs(row["implied_volatility"] - implied) <= 1e-15
        own = variances[f"{currency}USDT"]
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        # trailing: the 30 sessions ending at the day's 08:00; forward: from 08:00 next day
        trailing = realized_30(own, midnight + timedelta(hours=8) - timedelta(days=30))
        forward = realized_30(own, midnight + timedelta(days=1, hours=8))
        for name, want in (("trailing", trailing), ("forward", forward)):
            got = row[f"realized_volatility_{name}_30d"]
            if want is None:
                assert got is None and row[f"premium_{name}_30d"] is None, (currency, day)
                continue
            assert abs(got - want) <= 1e-12 * want, (currency, day, name, got, want)
            assert abs(row[f"premium_{name}_30d"] - (implied - want)) <= 1e-12
            assert abs(row[f"variance_premium_{name}_30d"] - (implied**2 - want**2)) <= 1e-12
        trailing_seen += trailing is not None
        forward_seen += forward is not None
    # the range holds days with a trailing window (2023-01-31..03-05), with a forward one
    # (2023-01-01..02-03: the last session built starts 2023-03-05) and with one only
    assert trailing_seen == 2 * 34 and forward_seen == 2 * 34


def flat(points) -> list[float]:
    return [float(v) for point in points for v in point]


def window(first: date, last: date) -> tuple[datetime, datetime]:
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    return start, datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)


def test_session_chart_draws_the_marts_candles(built):
    """Each wick spans the session's low to high and each body its open to close, at the
    session's start, for every session of the mart in the window; the marked extremes are
    the window's highest high and lowest low."""
    from matplotlib.dates import date2num

    from mkt_platform.lib.charts import session_chart

    with duckdb.connect(str(built / "warehouse.duckdb"), read_only=True) as con:
        # a one-day window shows the 60 days of sessions up to its end
        chart = session_chart(con, *window(date(2023, 2, 28), date(2023, 2, 28)))
    rows = query(
        built,
        "select instrument, session_start, open::double o, high::double h, low::double l, "
        "close::double c from marts.session_ohlc_daily where session_start >= "
        "'2022-12-31 00:00:00+00' and session_start < '2023-03-01 00:00:00+00'",
    )
    assert {r["instrument"] for r in rows} == {"BTCUSDT", "ETHUSDT"}
    for instrument in ("BTCUSDT", "ETHUSDT"):
        own = sorted(
            (r for r in rows if r["instrument"] == instrument), key=lambda r: r["session_start"]
        )
        assert len(own) == 59  # the sessions of 2023-01-01..02-28
        x = [date2num(r["session_start"]) for r in own]
        assert chart.segments(f"{instrument}:wick") == [
            (xi, r["l"], r["h"]) for xi, r in zip(x, own, strict=True)
        ]
        bodies = chart.bars(f"{instrument}:body")
        assert flat(bodies) == pytest.approx(
            flat(
                (xi, min(r["o"], r["c"]), max(r["o"], r["c"])) for xi, r in zip(x, own, strict=True)
            ),
            rel=1e-12,
        )
        top = max(own, key=lambda r: r["h"])
        assert chart.series(f"{instrument}:max_high") == [
            (date2num(top["session_start"]), top["h"])
        ]
        bottom = min(own, key=lambda r: r["l"])
        assert chart.series(f"{instrument}:min_low") == [
            (date2num(bottom["session_start"]), bottom["l"])
        ]
    assert_nothing_clipped(chart)  # two panels, their titles and the extremes' labels


def test_premium_chart_draws_the_marts_series(built):
    from matplotlib.dates import date2num

    from mkt_platform.lib.charts import premium_chart

    with duckdb.connect(str(built / "warehouse.duckdb"), read_only=True) as con:
        chart = premium_chart(con, *window(date(2023, 3, 1), date(2023, 3, 5)))
    rows = query(built, "select * from marts.volatility_risk_premium_daily order by day")
    for currency in ("BTC", "ETH"):
        own = [r for r in rows if r["currency"] == currency]
        for column in ("implied_volatility", "realized_volatility_trailing_30d"):
            want = [(date2num(r["day"]), r[column] * 100) for r in own if r[column] is not None]
            assert flat(chart.series(f"{currency}:{column}")) == pytest.approx(
                flat(want), rel=1e-12
            )
        premium = [
            (date2num(r["day"]), r["premium_trailing_30d"] * 100)
            for r in own
            if r["premium_trailing_30d"] is not None
        ]
        drawn = chart.bars(f"{currency}:premium_trailing_30d")
        # a bar spans 0 to the premium (bottom and top sorted): their sum is the premium
        assert flat((b[0], b[1] + b[2]) for b in drawn) == pytest.approx(flat(premium), rel=1e-12)
    assert_nothing_clipped(chart)  # the legends beside each panel


def test_the_materializations_carry_their_chart(built_and_instance):
    """The Dagster UI shows a chart on the charted marts' materializations: markdown with an
    inline PNG drawn by the run that built them."""
    import base64
    import re

    import dagster as dg

    _, instance = built_and_instance
    for key in ("session_ohlc_daily", "volatility_risk_premium_daily"):
        (record,) = instance.fetch_materializations(dg.AssetKey(key), limit=1).records
        chart = record.asset_materialization.metadata["chart"]
        assert isinstance(chart, dg.MarkdownMetadataValue)
        match = re.search(r"\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", chart.value)
        assert match and base64.b64decode(match[1])[:8] == b"\x89PNG\r\n\x1a\n"
