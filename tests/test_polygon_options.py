"""The SPY options near the money at the open, their minute bars and their sessions (issue 18,
items 3 and 4): ``polygon_spy_options_contracts``, ``polygon_spy_options_aggs_1m``, the marts
``equity_option_session_ohlc_daily`` and ``equity_consolidated_1m``.

Data (SOURCES.md section 13): SPY's minute bars of 2025-08-29
(``raftroch1_polygon_SPY_1min_2025-08-29.csv``), Polygon's SPY options contracts listing
fetched 2025-08-30 (``raftroch1_polygon_v3_reference_options_contracts_SPY_2025-08-30.json``:
it lacks the contracts that expired on 2025-08-29, so does every selection here) and the
minute bars of ten contracts expiring 2025-09-02 on 2025-08-29
(``raftroch1_polygon_O_SPY250902…_1min_2025-08-29.csv``). The replay answers the bars of any
other contract with no bar (a header says it is unrecorded). Expected figures are computed
here from those files with ``json``, ``csv`` and ``Decimal``.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mkt_platform.defs.polygon.assets import select_contracts
from mkt_platform.lib import lake
from tests.test_polygon import (
    DAY_2025,
    FILE_2025,
    NEW_YORK,
    POLYGON,
    recorded_bars,
    regular_hours,
)
from tests.test_polygon import polygon as polygon  # the fixture

LISTING = POLYGON / "raftroch1_polygon_v3_reference_options_contracts_SPY_2025-08-30.json"
RECORDED_OPTIONS = sorted(POLYGON.glob("raftroch1_polygon_O_SPY*_1min_2025-08-29.csv"))


def materialize(instance, *names: str, partition_key: str = DAY_2025):
    from mkt_platform.definitions import build_definitions

    defs = build_definitions()
    return dg.materialize(
        list(defs.assets),
        selection=dg.AssetSelection.assets(*names),
        partition_key=partition_key,
        resources=defs.resources,
        instance=instance,
        raise_on_error=False,
    )


def failure_message(result) -> str:
    failure = next(e for e in result.all_events if e.is_step_failure)
    return failure.step_failure_data.user_failure_data.description


def spy_open() -> Decimal:
    """SPY's open on 2025-08-29: the open of its first bar at or after 09:30 New York time."""
    return regular_hours(DAY_2025, recorded_bars(FILE_2025)[DAY_2025])[0]["open"]


def expected_selection(band: Decimal, days: int, limit: int) -> list[dict]:
    """The contracts of the listing within ``band`` % of the open, expiring within ``days``,
    the ``limit`` nearest the money; computed here from the recorded listing."""
    opened = spy_open()
    low, high = opened * (1 - band / 100), opened * (1 + band / 100)
    last = (date.fromisoformat(DAY_2025) + timedelta(days=days)).isoformat()
    listed = [
        c
        for c in json.loads(LISTING.read_text(), parse_float=Decimal)
        if c["underlying_ticker"] == "SPY"
        and DAY_2025 <= c["expiration_date"] <= last
        and low <= Decimal(c["strike_price"]) <= high
    ]
    listed.sort(
        key=lambda c: (
            abs(Decimal(c["strike_price"]) - opened),
            c["expiration_date"],
            Decimal(c["strike_price"]),
            c["contract_type"],
        )
    )
    return listed[:limit]


def test_strikes_equally_far_from_the_open_go_by_expiry_then_strike_then_type() -> None:
    """Around an open of 600.50, strikes 600 and 601 are equally near the money: the four
    kept of eight are the nearest expiry's, both strikes, call and put, as the rule says
    (a quotient strike / open rounded at 28 digits made 600 look nearer, and took the next
    expiry's 600s instead of the 601s)."""
    listing = pa.table(
        {
            "ticker": [f"{e}{k}{t}" for e in ("A", "B") for k in (600, 601) for t in "CP"],
            "expiration_date": [e for e in ("2025-09-02", "2025-09-03") for _ in range(4)],
            "strike_price": [Decimal(k) for _ in range(2) for k in (600, 601) for _ in "CP"],
            "contract_type": [t for _ in range(4) for t in ("call", "put")],
        }
    )
    chosen, dropped = select_contracts(listing, Decimal("600.50"), 4)
    assert chosen["ticker"].to_pylist() == ["A600C", "A600P", "A601C", "A601P"]
    assert dropped == 4


def lake_file(dataset: str) -> list[dict]:
    return pq.read_table(lake.raw_partition_path("polygon", dataset, DAY_2025)).to_pylist()


def warehouse_rows(sql: str) -> list[dict]:
    with duckdb.connect(str(lake.lake_root().parent / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute(sql)
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_the_contracts_at_the_open_are_the_band_of_the_listing(polygon, instance) -> None:
    """With the defaults (±1 %, 7 days, at most 100), 2025-08-29's contracts are the listing's
    contracts with strikes within 1 % of SPY's open (647.47) expiring by 2025-09-05, the 100
    nearest the money of them; each row carries the open and its exact moneyness. Without
    SPY's bars of the day the contracts cannot be chosen, and the run says so."""
    server, _ = polygon
    missing = materialize(instance, "polygon_spy_options_contracts")
    assert not missing.success
    assert "SPY's minute bars of 2025-08-29 are not in the lake" in failure_message(missing)
    assert server.requests("polygon") == []

    assert materialize(instance, "polygon_spy_aggs_1m").success
    result = materialize(instance, "polygon_spy_options_contracts")
    assert result.success
    opened = spy_open()
    assert opened == Decimal("647.47")
    expected = expected_selection(Decimal(1), 7, 100)
    in_band = expected_selection(Decimal(1), 7, 10_000)
    assert len(in_band) > 100  # the cap matters on this day
    rows = lake_file("spy_options_contracts")
    assert sorted(r["ticker"] for r in rows) == sorted(c["ticker"] for c in expected)
    for row in rows:
        strike = row["strike_price"]
        assert row["underlying_open"] == opened
        assert row["moneyness_at_open"] == (strike / opened).quantize(
            Decimal("1e-8"), rounding=ROUND_HALF_EVEN
        )
        assert row["as_of"] == date(2025, 8, 29)
        assert abs(strike / opened - 1) <= Decimal("0.01")
    (materialization,) = result.asset_materializations_for_node("polygon_spy_options_contracts")
    assert materialization.metadata["contracts"].value == 100
    assert materialization.metadata["contracts_left_out"].value == len(in_band) - 100
    (listing,) = [r for r in server.requests("polygon") if "/v3/" in r.path]
    assert listing.query["as_of"] == [DAY_2025]
    assert listing.query["expiration_date.lte"] == ["2025-09-05"]


@pytest.mark.slow
def test_recorded_option_sessions_equal_their_minute_bars(polygon, instance, monkeypatch) -> None:
    """With a band of 4.5 % and a horizon of 4 days (so the ten recorded contracts, strikes
    625-675 expiring 2025-09-02, are among those chosen), the options' minute bars land as
    recorded, and each recorded contract's session in ``equity_option_session_ohlc_daily``
    equals its regular-hours bars aggregated here, with its moneyness against SPY's session
    close and four days to expiry. ``equity_consolidated_1m`` puts SPY's and each option's
    minute side by side. The API key is in no lake file and no warehouse."""
    _, key = polygon
    monkeypatch.setenv("MKT_POLYGON_OPTIONS_BAND_PCT", "4.5")
    monkeypatch.setenv("MKT_POLYGON_OPTIONS_EXPIRY_DAYS", "4")
    monkeypatch.setenv("MKT_POLYGON_OPTIONS_MAX_CONTRACTS", "200")
    pulled = materialize(
        instance,
        "polygon_spy_aggs_1m",
        "polygon_spy_options_contracts",
        "polygon_spy_options_aggs_1m",
    )
    assert pulled.success
    chosen = expected_selection(Decimal("4.5"), 4, 200)
    tickers = {c["ticker"] for c in chosen}
    assert {r["ticker"] for r in lake_file("spy_options_contracts")} == tickers
    recorded = {
        "O:" + path.name.split("_")[3]: recorded_bars(path)[DAY_2025] for path in RECORDED_OPTIONS
    }
    assert len(recorded) == 10 and set(recorded) <= tickers
    bars = lake_file("spy_options_aggs_1m")
    assert {r["ticker"] for r in bars} == set(recorded)  # the others answered no bar
    for ticker, expected in recorded.items():
        rows = [r for r in bars if r["ticker"] == ticker]
        assert [int(r["bar_time"].timestamp() * 1000) for r in rows] == [b["t"] for b in expected]
        for row, bar in zip(rows, expected, strict=True):
            assert {k: row[k] for k in ("open", "high", "low", "close", "volume", "vwap")} == {
                k: bar[k] for k in ("open", "high", "low", "close", "volume", "vwap")
            }
    (agg,) = pulled.asset_materializations_for_node("polygon_spy_options_aggs_1m")
    assert agg.metadata["contracts_with_bars"].value == 10

    from mkt_platform.definitions import build_definitions

    defs = build_definitions()
    marts = (
        "nyse_sessions",
        "equity_session_ohlc_daily",
        "equity_option_session_ohlc_daily",
        "equity_consolidated_1m",
    )
    built = dg.materialize(
        list(defs.assets),
        selection=dg.AssetSelection.assets(*marts),
        partition_key=DAY_2025,
        resources=defs.resources,
        instance=instance,
        raise_on_error=False,
    )
    assert built.success
    first = warehouse_rows("select * from marts.equity_consolidated_1m order by all")
    # built again, the day is replaced, not doubled (the incremental delete of a whole day)
    assert materialize(instance, *marts).success
    assert warehouse_rows("select * from marts.equity_consolidated_1m order by all") == first
    spy = regular_hours(DAY_2025, recorded_bars(FILE_2025)[DAY_2025])
    spy_close = spy[-1]["close"]
    mart = {
        r["ticker"]: r
        for r in warehouse_rows("select * from marts.equity_option_session_ohlc_daily")
    }
    traded = {t: regular_hours(DAY_2025, b) for t, b in recorded.items()}
    traded = {t: b for t, b in traded.items() if b}
    assert set(mart) == set(traded)
    close_2025_09_02 = datetime(2025, 9, 2, 16, tzinfo=NEW_YORK).astimezone(UTC)
    for ticker, session in traded.items():
        row = mart[ticker]
        assert row["bar_count"] == len(session)
        assert (row["open"], row["close"]) == (session[0]["open"], session[-1]["close"])
        assert row["high"] == max(b["high"] for b in session)
        assert row["low"] == min(b["low"] for b in session)
        assert row["volume"] == sum(b["volume"] for b in session)
        assert row["transactions"] == sum(b["transactions"] for b in session)
        vwap = sum(b["vwap"] * b["volume"] for b in session) / sum(b["volume"] for b in session)
        assert row["vwap"] == pytest.approx(float(vwap), rel=1e-12)
        strike = Decimal(int(ticker[-8:])) / 1000
        assert row["strike_price"] == strike
        assert row["contract_type"] == ("call" if ticker[-9] == "C" else "put")
        assert row["underlying_close"] == spy_close
        assert row["moneyness"] == pytest.approx(float(strike / spy_close), rel=1e-12)
        assert row["expiry_close"] == close_2025_09_02
        assert row["time_to_expiry_days"] == pytest.approx(4.0)

    consolidated = warehouse_rows("select * from marts.equity_consolidated_1m")
    assert len(consolidated) == 390 * len(tickers)
    spy_by_minute = {b["t"]: b for b in spy}
    for row in consolidated:
        t = int(row["bar_time"].timestamp() * 1000)
        bar = spy_by_minute.get(t)
        assert row["spy_close"] == (bar["close"] if bar else None)
        assert row["vix_close"] is None  # no VIX pulled in this test
    c625 = "O:SPY250902C00625000"
    minutes = {
        int(r["bar_time"].timestamp() * 1000): r["option_close"]
        for r in consolidated
        if r["option_ticker"] == c625
    }
    assert len(minutes) == 390
    assert {t: c for t, c in minutes.items() if c is not None} == {
        b["t"]: b["close"] for b in traded[c625]
    }

    # The day's contracts chosen again with a band of 1 %: none that traded in the
    # recording is among them, so the day's option sessions are none (the ten of before
    # are not kept beside them).
    monkeypatch.setenv("MKT_POLYGON_OPTIONS_BAND_PCT", "1")
    assert materialize(instance, "polygon_spy_options_contracts").success
    assert not set(traded) & {r["ticker"] for r in lake_file("spy_options_contracts")}
    assert materialize(instance, "equity_option_session_ohlc_daily").success
    assert warehouse_rows("select * from marts.equity_option_session_ohlc_daily") == []

    files = [p for p in Path(lake.lake_root()).parent.rglob("*") if p.is_file()]
    for path in files:
        assert key.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(
    ("lie", "field"),
    [
        (
            lambda p: {
                **p,
                "results": [{**c, "strike_price": str(c["strike_price"])} for c in p["results"]],
            },
            "strike_price",
        ),
        (
            lambda p: {**p, "results": [{**c, "strike_price": 999} for c in p["results"]]},
            "strike_price",
        ),
        (
            lambda p: {**p, "results": [{**c, "underlying_ticker": "QQQ"} for c in p["results"]]},
            "underlying_ticker",
        ),
        (
            lambda p: {
                **p,
                "results": [{**c, "expiration_date": "2025-9-2"} for c in p["results"]],
            },
            "expiration_date",
        ),
    ],
    ids=["a strike as a string", "a strike outside the band", "another underlying", "a bad date"],
)
def test_a_malformed_listing_fails_naming_endpoint_underlying_and_field(
    polygon, instance, lie, field
) -> None:
    server, key = polygon
    assert materialize(instance, "polygon_spy_aggs_1m").success
    server.mutate(
        "polygon",
        lambda request, payload: lie(payload) if "/v3/" in request.path else payload,
    )
    result = materialize(instance, "polygon_spy_options_contracts")
    assert not result.success
    message = failure_message(result)
    assert "/v3/reference/options/contracts" in message and "underlying_ticker=SPY" in message
    assert field in message and key not in message, message
    assert not lake.raw_partition_path("polygon", "spy_options_contracts", DAY_2025).exists()
