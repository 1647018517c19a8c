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

from tests.conftest import SHARED_DATA, materialize_days
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
def built(tmp_path_factory, replay):
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
        yield data_dir
    finally:
        monkeypatch.undo()


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
