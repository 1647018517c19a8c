"""Hyperliquid through Dagster and dbt, against the replayed recordings: kPEPE candles into
the session marts, BTC funding across the 8-hourly to hourly switch, the freqtrade BTC and
HYPE candles and funding (SOURCES.md section 10) into the lake, asset-context snapshots.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest
import yaml

from mkt_platform.defs.hyperliquid.datasets import ASSET_CONTEXTS
from mkt_platform.defs.hyperliquid.resources import HyperliquidClient
from mkt_platform.lib import lake
from mkt_platform.lib.dbt import dbt_resource, dbt_window_env, environment
from tests.conftest import SHARED_DATA, ephemeral_sql, files_read, materialize_days

pytestmark = pytest.mark.slow

HL = SHARED_DATA / "hyperliquid"


def cassette_body(name: str, kind: str):
    for interaction in yaml.safe_load((HL / name).read_text())["interactions"]:
        if json.loads(interaction["request"]["body"])["type"] == kind:
            return json.loads(interaction["response"]["body"]["string"])
    raise AssertionError(f"no {kind} in {name}")


def ts(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def query(data_dir, sql: str) -> list[dict]:
    from mkt_platform.warehouse import set_lake_variable

    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        set_lake_variable(con)  # compiled staging SQL reads the lake's root from it
        cursor = con.execute(sql)
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_kpepe_candles_reach_the_daily_sessions(data_dir, instance):
    """The 24 recorded kPEPE candles land in the lake as sent and give two incomplete daily
    sessions (08:00 anchor) equal to an aggregation written here from the cassette."""
    days = (date(2023, 5, 21), date(2023, 5, 22))
    assert all(
        r.success for r in materialize_days(*days, instance, only=("hyperliquid_candles_1h",))
    )
    candles = cassette_body("vcr_meta+candleSnapshot_kPEPE_1h_2023-05-21.yaml", "candleSnapshot")
    lake_rows = pq.read_table(
        lake.raw_partition_path("hyperliquid", "candles_1h", "2023-05-22")
    ).to_pylist()
    assert [(r["open_time"], r["close"]) for r in lake_rows] == [
        (ts(c["t"]), Decimal(c["c"])) for c in candles if ts(c["t"]).date() == date(2023, 5, 22)
    ]
    sessions = query(
        data_dir,
        "select * from marts.session_ohlc_daily where source = 'hyperliquid' order by session_start",
    )
    assert [s["instrument"] for s in sessions] == ["kPEPE", "kPEPE"]
    for session in sessions:
        start = session["session_start"].timestamp() * 1000
        inside = [c for c in candles if start <= c["t"] < start + 86_400_000]
        assert session["open"] == Decimal(inside[0]["o"])
        assert session["close"] == Decimal(inside[-1]["c"])
        assert session["high"] == max(Decimal(c["h"]) for c in inside)
        assert session["low"] == min(Decimal(c["l"]) for c in inside)
        assert session["volume"] == sum(Decimal(c["v"]) for c in inside)
        assert session["trades"] == sum(c["n"] for c in inside)
        assert session["quote_volume"] is None  # Hyperliquid does not send it
        assert session["candle_count"] == len(inside) == 12
        assert session["is_complete"] is False


def test_funding_switch_from_8h_to_1h_is_handled(data_dir, instance):
    """Around 2023-06-08 the per-event rate drops eightfold because events become hourly: the
    daily mart must sum what was paid (3 events before, 24 after) and tag each interval."""
    days = (date(2023, 6, 1), date(2023, 6, 10))
    only = ("hyperliquid_funding_rates",)
    assert all(r.success for r in materialize_days(*days, instance, only=only))
    records = cassette_body(
        "vcr_meta+fundingHistory_BTC_2023-05-12_to_2023-07-17.yaml", "fundingHistory"
    )
    days = {
        row["funding_date"].isoformat(): row
        for row in query(
            data_dir,
            "select * from marts.funding_rates_daily where instrument = 'BTC'",
        )
    }
    for day in ("2023-06-06", "2023-06-07", "2023-06-08", "2023-06-09", "2023-06-10"):
        events = [r for r in records if ts(r["time"]).date().isoformat() == day]
        assert days[day]["funding_events"] == len(events)
        assert days[day]["funding_rate_sum"] == sum(Decimal(r["fundingRate"]) for r in events)
    assert (days["2023-06-07"]["min_interval_hours"], days["2023-06-07"]["max_interval_hours"]) == (
        8,
        8,
    )
    assert (days["2023-06-09"]["min_interval_hours"], days["2023-06-09"]["max_interval_hours"]) == (
        1,
        1,
    )
    assert days["2023-06-07"]["funding_events"] == 3 and days["2023-06-09"]["funding_events"] == 24
    # 2023-06-08: the 00:00 event still paid 8 hours, the 23 later ones one hour each.
    switch = query(
        data_dir,
        "select funding_time, funding_interval_hours "
        f"from ({ephemeral_sql('stg_hyperliquid__funding_rates')}) "
        "where instrument = 'BTC' and cast(funding_time as date) = date '2023-06-08' "
        "order by funding_time",
    )
    assert [s["funding_interval_hours"] for s in switch] == [8] + [1] * 23

    # The carry (funding_carry_daily): each complete day's summed rate x 365, and the 7-day
    # mean x 365 once 7 complete days are there, recomputed here from the exchange's own
    # events; a day that is not complete has no annualized figure.
    carry = {
        row["funding_date"]: row
        for row in query(
            data_dir, "select * from marts.funding_carry_daily where instrument = 'BTC'"
        )
    }
    all_days = [date(2023, 6, 1) + timedelta(days=i) for i in range(10)]
    assert sorted(carry) == all_days
    paid = {
        day: sum(Decimal(r["fundingRate"]) for r in records if ts(r["time"]).date() == day)
        for day in all_days
    }
    complete = {day: days[day.isoformat()]["hours_covered"] == 24 for day in all_days}
    # The switch day's events cover 31 hours (8 + 23): not a complete day of carry.
    assert [d for d in all_days if not complete[d]] == [date(2023, 6, 8)]
    reported = 0
    for day in all_days:
        row = carry[day]
        assert row["carry_annualized"] == (paid[day] * 365 if complete[day] else None)
        apr = days[day.isoformat()]["funding_apr_pct"]
        assert apr == (paid[day] * 365 * 100 if complete[day] else None)
        window = [day - timedelta(days=i) for i in range(7)]
        if all(complete.get(d) for d in window):
            want = float(sum(paid[d] for d in window) * 365 / 7)
            assert abs(float(row["carry_annualized_7d"]) - want) <= 1e-12 * abs(want)
            reported += 1
        else:
            assert row["carry_annualized_7d"] is None
        assert row["carry_annualized_30d"] is None  # ten days recorded here, not thirty
    assert reported == 1  # only the window 06-01..06-07 holds no switch day
    assert carry[date(2023, 6, 7)]["complete_days_7d"] == 7
    assert carry[date(2023, 6, 10)]["complete_days_7d"] == 6

    # A one-day run of 2023-06-08 (as its partition runs it) reads that day's file and its
    # neighbours' (an event filed in a neighbouring partition), rewrites that day's row
    # identically, and keeps every other day (the mart is incremental).
    window = dg.TimeWindow(datetime(2023, 6, 8, tzinfo=UTC), datetime(2023, 6, 9, tzinfo=UTC))
    with environment(dbt_window_env(window, "utc_hour")):
        invocation = dbt_resource().cli(
            ["build", "--select", "funding_rates_daily"],
            raise_on_error=False,
        )
        invocation.wait()
        staging = ephemeral_sql("stg_hyperliquid__funding_rates")
    assert invocation.is_successful()
    after = {
        row["funding_date"].isoformat(): row
        for row in query(
            data_dir, "select * from marts.funding_rates_daily where instrument = 'BTC'"
        )
    }
    assert after == days
    assert files_read(data_dir / "warehouse.duckdb", f"select * from ({staging})") == {3}


def _in(event, hours: set[datetime]) -> bool:
    """Whether a fundingHistory event (a dict with ``time`` in UTC ms) is of one of ``hours``."""
    if not isinstance(event, dict) or "time" not in event:
        return False
    return ts(event["time"]).replace(minute=0, second=0, microsecond=0) in hours


def test_missed_hourly_funding_events_leave_the_day_incomplete(data_dir, instance, replay):
    """BTC's 2023-06-09 served without its 09:00-15:00 events (7 missed in the hourly
    schedule): the 16:00 event pays one hour as every hourly event does, not the 8 hours of
    its gap, so the day covers 17 hours, is not complete, and has no annualized figure."""
    missed = {datetime(2023, 6, 9, h, tzinfo=UTC) for h in range(9, 16)}

    def without_missed(request, payload):
        if isinstance(payload, list):
            payload[:] = [e for e in payload if not _in(e, missed)]
        return payload

    replay.mutate("hyperliquid", without_missed)
    try:
        only = ("hyperliquid_funding_rates",)
        days = (date(2023, 6, 9), date(2023, 6, 9))
        assert all(r.success for r in materialize_days(*days, instance, only=only))
    finally:
        replay.clear_mutations()
    (row,) = query(
        data_dir,
        "select * from marts.funding_rates_daily "
        "where instrument = 'BTC' and funding_date = date '2023-06-09'",
    )
    assert row["funding_events"] == 17
    assert (row["min_interval_hours"], row["max_interval_hours"]) == (1, 1)
    assert row["hours_covered"] == 17
    assert row["funding_apr_pct"] is None
    (carry,) = query(
        data_dir,
        "select * from marts.funding_carry_daily "
        "where instrument = 'BTC' and funding_date = date '2023-06-09'",
    )
    assert carry["is_complete"] is False and carry["carry_annualized"] is None


def freqtrade_rows(coin: str, kind: str) -> list[list]:
    """The rows of ``freqtrade_hyperliquid_{coin}_USDC-1h-{kind}.json``."""
    return json.loads((HL / f"freqtrade_hyperliquid_{coin}_USDC-1h-{kind}.json").read_text())


def exact(value: float) -> Decimal:
    """The decimal a recorded float stands for (its shortest repr)."""
    return Decimal(repr(value))


def lake_day(dataset: str, day: str, coin: str) -> list[dict]:
    table = pq.read_table(lake.raw_partition_path("hyperliquid", dataset, day))
    return [r for r in table.to_pylist() if r["coin"] == coin]


def test_freqtrade_btc_and_hype_days_land_in_the_lake_exactly(
    data_dir, instance, tmp_path, monkeypatch
):
    """2025-03-01..03 of the freqtrade BTC and HYPE recordings (1h perp candles and hourly
    funding) through the raw assets: every lake row equals the recorded values exactly, the
    trade count and premium freqtrade did not keep are NULL (not 0, not invented), and the
    session marts built on them carry NULL trades."""
    recorded = yaml.safe_load(
        (Path(lake.__file__).parents[1] / "replay" / "recorded_instruments.yaml").read_text()
    )["instruments"]
    universe = [
        e for e in recorded if e["venue"] == "hyperliquid" and e["instrument"] in ("BTC", "HYPE")
    ]
    assert [e["intervals"] for e in universe] == [["1h"], ["1h"]]
    path = tmp_path / "btc_hype.yaml"
    path.write_text(yaml.safe_dump({"instruments": universe}))
    monkeypatch.setenv("MKT_INSTRUMENTS_FILE", str(path))
    only = ("hyperliquid_candles_1h", "hyperliquid_funding_rates")
    runs = materialize_days(date(2025, 3, 1), date(2025, 3, 2), instance, only=only)
    assert all(r.success for r in runs)
    for coin in ("BTC", "HYPE"):
        candles, funding = freqtrade_rows(coin, "perp"), freqtrade_rows(coin, "funding")
        for day in ("2025-03-01", "2025-03-02", "2025-03-03"):
            want = [c for c in candles if ts(c[0]).date().isoformat() == day]
            assert len(want) == 24
            assert lake_day("candles_1h", day, coin) == [
                {
                    "coin": coin,
                    "open_time": ts(c[0]),
                    "close_time": ts(c[0] + 3_599_999),
                    "interval": "1h",
                    "open": exact(c[1]),
                    "high": exact(c[2]),
                    "low": exact(c[3]),
                    "close": exact(c[4]),
                    "volume": exact(c[5]),
                    "trades": None,
                }
                for c in want
            ]
            want_funding = [f for f in funding if ts(f[0]).date().isoformat() == day]
            assert len(want_funding) == 24
            assert lake_day("funding_rates", day, coin) == [
                {"coin": coin, "time": ts(f[0]), "funding_rate": exact(f[1]), "premium": None}
                for f in want_funding
            ]
    sessions = query(
        data_dir,
        "select instrument, trades, volume from marts.session_ohlc_daily "
        "where session_start = '2025-03-01 08:00:00+00' order by instrument",
    )
    assert [(s["instrument"], s["trades"]) for s in sessions] == [("BTC", None), ("HYPE", None)]
    btc = [
        c for c in freqtrade_rows("BTC", "perp") if ts(c[0]) >= datetime(2025, 3, 1, 8, tzinfo=UTC)
    ]
    assert sessions[0]["volume"] == sum(exact(c[5]) for c in btc[:24])


def test_btc_funding_across_the_cassette_seam(data_dir, instance, tmp_path, monkeypatch):
    """2023-07-17, the last day of the SDK cassette: up to 21:00 the lake holds the cassette's
    records (8-decimal rates, premium), then the freqtrade file's (premium NULL), one row per
    funding time (the replay's documented overlap rule)."""
    path = tmp_path / "btc.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "instruments": [
                    {
                        "venue": "hyperliquid",
                        "instrument": "BTC",
                        "base": "BTC",
                        "quote": "USDC",
                        "market": "perp",
                        "intervals": [],
                    }
                ]
            }
        )
    )
    monkeypatch.setenv("MKT_INSTRUMENTS_FILE", str(path))
    runs = materialize_days(
        date(2023, 7, 17), date(2023, 7, 17), instance, only=("hyperliquid_funding_rates",)
    )
    assert all(r.success for r in runs)
    cassette = cassette_body(
        "vcr_meta+fundingHistory_BTC_2023-05-12_to_2023-07-17.yaml", "fundingHistory"
    )
    day = date(2023, 7, 17)
    from_cassette = [
        {
            "coin": "BTC",
            "time": ts(r["time"]),
            "funding_rate": Decimal(r["fundingRate"]),
            "premium": Decimal(r["premium"]),
        }
        for r in cassette
        if ts(r["time"]).date() == day
    ]
    last = cassette[-1]["time"]
    from_freqtrade = [
        {"coin": "BTC", "time": ts(f[0]), "funding_rate": exact(f[1]), "premium": None}
        for f in freqtrade_rows("BTC", "funding")
        if ts(f[0]).date() == day and f[0] > last
    ]
    assert len(from_cassette) == 22 and len(from_freqtrade) == 2
    assert lake_day("funding_rates", "2023-07-17", "BTC") == from_cassette + from_freqtrade


def test_asset_contexts_snapshot_appends_today_and_refuses_the_past(data_dir, replay, instance):
    """Two snapshots of today append (never replace); a past day is refused, not invented."""
    client = HyperliquidClient(base_url=replay.base_url("hyperliquid"))
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    for _ in range(2):
        assert dg.materialize(
            [ASSET_CONTEXTS.asset()],
            partition_key=today,
            resources={"hyperliquid": client},
            instance=instance,
        ).success
    table = pq.read_table(lake.raw_partition_path("hyperliquid", "asset_contexts", today))
    # The recorded universe's perps in the 2023 meta; HYPE (listed 2024) is not in it, so it
    # is left out (and logged), never given a context.
    assert sorted(set(table["coin"].to_pylist())) == ["BTC", "ETH", "SOL", "kPEPE"]
    assert len(set(table["snapshot_time"].to_pylist())) == 2 and table.num_rows == 8
    # The contexts come from the 2026 capture; BTC is index 0 of the main ("") dex.
    recorded = json.loads((HL / "ws_allDexsAssetCtxs_snapshot_2026.json").read_text())
    main_dex = dict(recorded["data"]["ctxs"])[""]
    btc = next(r for r in table.to_pylist() if r["coin"] == "BTC")
    assert btc["mark_px"] == Decimal(main_dex[0]["markPx"])
    assert btc["open_interest"] == Decimal(main_dex[0]["openInterest"])

    past = dg.materialize(
        [ASSET_CONTEXTS.asset()],
        partition_key="2023-05-21",
        resources={"hyperliquid": client},
        instance=instance,
        raise_on_error=False,
    )
    assert not past.success
    assert not lake.raw_partition_path("hyperliquid", "asset_contexts", "2023-05-21").exists()
