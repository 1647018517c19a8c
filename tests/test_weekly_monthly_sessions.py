"""Weekly and monthly sessions through the platform, against Binance's own 1d klines and an
independent computation from the hourly klines; and declarative automation over them."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import dagster as dg
import duckdb
import pytest

from mkt_platform.definitions import build_definitions
from mkt_platform.defs.binance.datasets import KLINES_1H
from mkt_platform.defs.binance.resources import BinanceSpotClient
from mkt_platform.lib.dbt import partial_parse_cache
from tests.conftest import SYMBOLS, materialize_days, read_sessions, recorded_klines, rel_close

pytestmark = pytest.mark.slow


def weekly(data_dir, where: str = "true") -> list[dict]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute(
            f"select * from marts.session_ohlc_weekly where {where} "
            "order by source, instrument, session_start"
        )
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_monday_utc_weeks_equal_binance_daily_klines(
    data_dir, hourly_universe, instance, monkeypatch
):
    """Anchor 00:00 and weekday MON: every complete weekly session of 2023-01-02..2023-06-25
    equals the aggregation of Binance's 1d klines over its 7 days (the halt week included)."""
    monkeypatch.setenv("MKT_SESSION_ANCHOR_HOUR", "0")
    monkeypatch.setenv("MKT_WEEKLY_SESSION_WEEKDAY", "MON")
    results = materialize_days(
        date(2023, 1, 2), date(2023, 6, 25), instance, only=("binance_klines_1h",)
    )
    assert all(r.success for r in results), [(r.step.label, r.success) for r in results]
    rows = weekly(data_dir, "source = 'binance'")
    assert len(rows) == 3 * 25
    assert all(r["is_complete"] and r["day_count"] == 7 for r in rows)
    compared = 0
    for symbol in SYMBOLS:
        days = {r[0]: r for r in recorded_klines(symbol, "1d")}
        for row in (r for r in rows if r["instrument"] == symbol):
            start = ms(row["session_start"])
            week = [days[start + i * 86_400_000] for i in range(7)]
            assert row["session_start"].weekday() == 0 and row["session_start"].hour == 0
            assert row["open"] == Decimal(week[0][1]), (symbol, row["session_start"])
            assert row["high"] == max(Decimal(d[2]) for d in week)
            assert row["low"] == min(Decimal(d[3]) for d in week)
            assert row["close"] == Decimal(week[-1][4])
            assert rel_close(row["volume"], sum(Decimal(d[5]) for d in week))
            assert row["trades"] == sum(d[8] for d in week)
            compared += 1
    assert compared == 75
    halt_week = [r for r in rows if r["session_start"] == datetime(2023, 3, 20, tzinfo=UTC)]
    assert len(halt_week) == 3 and all(r["candle_count"] == 167 for r in halt_week)


def test_the_sessions_re_materialized_under_a_new_anchor_and_weekday_replace_the_old_ones(
    data_dir, hourly_universe, instance, monkeypatch
):
    """2023-01-02..2023-01-15 at the defaults (08:00 sessions, Friday weeks), then the same
    days again at anchor 00:00 with Monday weeks, as the README says to do after changing
    the settings: the marts then hold the new calendar alone (no 08:00 session, no Friday
    week), and its two Monday weeks equal Binance's 1d klines over their 7 days, volume
    included (an 08:00 session left beside the 00:00 one would count its day twice)."""
    days = (date(2023, 1, 2), date(2023, 1, 15))
    first = materialize_days(*days, instance, only=("binance_klines_1h",))
    assert all(r.success for r in first), [(r.step.label, r.success) for r in first]
    assert {r["session_start"].hour for r in read_sessions(data_dir)} == {8}
    assert {r["session_start"].weekday() for r in weekly(data_dir)} == {4}  # Fridays
    monkeypatch.setenv("MKT_SESSION_ANCHOR_HOUR", "0")
    monkeypatch.setenv("MKT_WEEKLY_SESSION_WEEKDAY", "MON")
    again = materialize_days(*days, instance, only=("binance_klines_1h",))
    assert all(r.success for r in again), [(r.step.label, r.success) for r in again]

    daily = read_sessions(data_dir, "source = 'binance'")
    assert len(daily) == 3 * 14
    assert {(r["session_start"].hour, r["session_start"].minute) for r in daily} == {(0, 0)}
    rows = weekly(data_dir, "source = 'binance'")
    mondays = {datetime(2023, 1, 2, tzinfo=UTC), datetime(2023, 1, 9, tzinfo=UTC)}
    assert {r["session_start"] for r in rows} == mondays
    for symbol in SYMBOLS:
        klines = {r[0]: r for r in recorded_klines(symbol, "1d")}
        for row in (r for r in rows if r["instrument"] == symbol):
            week = [klines[ms(row["session_start"]) + i * 86_400_000] for i in range(7)]
            assert row["day_count"] == 7 and row["candle_count"] == 168
            assert (row["open"], row["close"]) == (Decimal(week[0][1]), Decimal(week[-1][4]))
            assert row["high"] == max(Decimal(d[2]) for d in week)
            assert row["low"] == min(Decimal(d[3]) for d in week)
            assert rel_close(row["volume"], sum(Decimal(d[5]) for d in week))
            assert row["trades"] == sum(d[8] for d in week)


def pct(value: Decimal, base: Decimal) -> Decimal:
    return ((value - base) / base * 100).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def test_default_week_from_friday_0800_equals_hourly_computation(data_dir, instance):
    """Defaults (Friday, 08:00): BTCUSDT's week from 2023-01-06 08:00 to 2023-01-13 08:00,
    computed here from the 168 hourly klines."""
    results = materialize_days(
        date(2023, 1, 6), date(2023, 1, 12), instance, only=("binance_klines_1h",)
    )
    assert all(r.success for r in results)
    (row,) = weekly(data_dir, "instrument = 'BTCUSDT'")
    start = datetime(2023, 1, 6, 8, tzinfo=UTC)
    hours = [
        r
        for r in recorded_klines("BTCUSDT", "1h")
        if ms(start) <= r[0] < ms(start + timedelta(days=7))
    ]
    assert len(hours) == 168
    opened, closed = Decimal(hours[0][1]), Decimal(hours[-1][4])
    high = max(Decimal(h[2]) for h in hours)
    low = min(Decimal(h[3]) for h in hours)
    first_high = next(i for i, h in enumerate(hours) if Decimal(h[2]) == high)
    first_low = next(i for i, h in enumerate(hours) if Decimal(h[3]) == low)
    assert (row["session_start"], row["session_end"]) == (start, start + timedelta(days=7))
    assert (row["open"], row["high"], row["low"], row["close"]) == (opened, high, low, closed)
    assert row["volume"] == sum(Decimal(h[5]) for h in hours)
    assert row["move"] == high - low
    assert row["chhigh"] == pct(high, opened)
    assert row["chlow"] == pct(low, opened)
    assert row["chclose"] == pct(closed, opened)
    assert row["chhightime"] == first_high // 24 and row["chlowtime"] == first_low // 24
    assert (row["counthours"], row["countdays"], row["day_count"]) == (168, 7, 7)
    assert row["is_complete"]


def requested_by(result, defs) -> set[tuple[str, str]]:
    return {
        (key.to_user_string(), pk)
        for key in defs.resolve_asset_graph().get_all_asset_keys()
        for pk in (result.get_requested_partitions(key) or set())
    }


def run_requested(defs, instance, requested: set[tuple[str, str]]) -> None:
    """Execute what automation requested, as the sensor's runs would (one run per asset
    partitions definition, over the requested key range)."""
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    keys = sorted({pk for _, pk in requested})
    result = dg.materialize(
        list(defs.assets),
        selection=dg.AssetSelection.assets(*{name for name, _ in requested}),
        resources=defs.resources,
        instance=instance,
        tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]},
    )
    assert result.success


def monthly(data_dir, where: str) -> list[dict]:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute(f"select * from marts.session_ohlc_monthly where {where}")
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def assert_partial_parse_with_window(
    data_dir, dbt_asset: str, model: str, bounds: tuple[str, str]
) -> None:
    """The latest dbt invocation of ``dbt_asset`` (the only target folder kept for it) re-used
    the saved parse (dbt's log says so, and never that it could not), and the compiled SQL
    of ``model`` filters on the run's window."""
    folders = [p for p in (data_dir / "dbt" / "runs").iterdir() if p.name.startswith(dbt_asset)]
    assert len(folders) == 1, folders
    events = [json.loads(line)["info"] for line in (folders[0] / "dbt.log").open()]
    names = {e["name"] for e in events}
    assert "PartialParsingEnabled" in names and "UnableToPartialParse" not in names
    parsed = next(e["msg"] for e in events if e["name"] == "PartialParsingEnabled")
    assert "0 files added" in parsed, parsed
    compiled = next(folders[0].glob(f"compiled/**/{model}.sql")).read_text()
    assert all(f"'{bound}'" in compiled for bound in bounds), compiled
    assert partial_parse_cache().exists() and partial_parse_cache().parent == data_dir / "dbt"


def test_month_then_automation_over_a_changed_raw_day(data_dir, hourly_universe, instance, replay):
    """The defaults' monthly session of BTCUSDT from Friday 2023-01-27 08:00 to Friday
    2023-02-24 08:00 equals a computation here from its 672 hourly klines. Then re-pulling raw
    day 2023-02-23 makes automation request exactly the daily sessions over it (02-22, 02-23,
    with their staging, their realized volatility and the volatility risk premium over
    them), and once they are rebuilt the weekly (02-17) and monthly (01-27) sessions that
    cover them; then nothing."""
    results = materialize_days(date(2023, 1, 27), date(2023, 2, 23), instance)
    assert all(r.success for r in results)
    assert "dbt monthly sessions" in [r.step.label for r in results]
    (row,) = monthly(data_dir, "instrument = 'BTCUSDT'")
    start, end = datetime(2023, 1, 27, 8, tzinfo=UTC), datetime(2023, 2, 24, 8, tzinfo=UTC)
    hours = [r for r in recorded_klines("BTCUSDT", "1h") if ms(start) <= r[0] < ms(end)]
    assert len(hours) == 672
    opened, closed = Decimal(hours[0][1]), Decimal(hours[-1][4])
    high = max(Decimal(h[2]) for h in hours)
    low = min(Decimal(h[3]) for h in hours)
    assert (row["session_start"], row["session_end"]) == (start, end)
    assert (row["open"], row["high"], row["low"], row["close"]) == (opened, high, low, closed)
    assert row["volume"] == sum(Decimal(h[5]) for h in hours)
    assert row["trades"] == sum(h[8] for h in hours)
    assert (row["chhigh"], row["chlow"], row["chclose"]) == (
        pct(high, opened),
        pct(low, opened),
        pct(closed, opened),
    )
    assert row["chhightime"] == next(i for i, h in enumerate(hours) if Decimal(h[2]) == high) // 24
    assert row["chlowtime"] == next(i for i, h in enumerate(hours) if Decimal(h[3]) == low) // 24
    assert (row["counthours"], row["countdays"], row["day_count"]) == (672, 28, 28)
    assert (row["year"], row["month"], row["is_complete"]) == (2023, 1, True)

    defs = build_definitions()
    at = datetime(2023, 2, 24, 9, tzinfo=UTC)
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=at)
    assert first.total_requested == 0  # everything was built after its raw data
    assert dg.materialize(
        [KLINES_1H.asset()],
        partition_key="2023-02-23",
        resources={"binance": BinanceSpotClient(base_url=replay.base_url("binance"))},
        instance=instance,
    ).success
    second = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, evaluation_time=at, cursor=first.cursor
    )
    daily = {
        (name, day)
        for name in (
            "int_candles_1h",
            "session_ohlc_daily",
            "realized_volatility_daily",
            "realized_volatility_rolling",
        )
        for day in ("2023-02-22", "2023-02-23")
    }
    # The volatility risk premium of the UTC days whose trailing realized volatility those
    # sessions change follows them, on this tick or, once they are rebuilt, on the next
    # (Dagster counts a dependency that "will be requested" only where both can run in one
    # run, and the premium's UTC days are another partitioning than the sessions').
    premium = {("volatility_risk_premium_daily", day) for day in ("2023-02-22", "2023-02-23")}
    asked = requested_by(second, defs)
    assert daily <= asked and asked - daily <= premium
    run_requested(defs, instance, daily)
    if asked & premium:
        run_requested(defs, instance, asked & premium)
    third = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, evaluation_time=at, cursor=second.cursor
    )
    weekly_request = {("session_ohlc_weekly", "2023-02-17")}
    monthly_request = {("session_ohlc_monthly", "2023-01-27")}
    assert requested_by(third, defs) == weekly_request | monthly_request | (premium - asked)
    run_requested(defs, instance, weekly_request)
    run_requested(defs, instance, monthly_request)
    if premium - asked:
        run_requested(defs, instance, premium - asked)
    assert_partial_parse_with_window(
        data_dir,
        "session_monthly_dbt",
        "session_ohlc_monthly",
        ("2023-01-27T08:00:00+00:00", "2023-02-24T08:00:00+00:00"),
    )
    fourth = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, evaluation_time=at, cursor=third.cursor
    )
    assert fourth.total_requested == 0

    # An older raw day within the 3-day lookback still refreshes its sessions; one outside it
    # (two weeks back) is left to an explicit backfill.
    cursor = fourth.cursor
    for day, expected in (("2023-02-21", ("2023-02-20", "2023-02-21")), ("2023-02-10", ())):
        assert dg.materialize(
            [KLINES_1H.asset()],
            partition_key=day,
            resources={"binance": BinanceSpotClient(base_url=replay.base_url("binance"))},
            instance=instance,
        ).success
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, evaluation_time=at, cursor=cursor
        )
        assert {
            pk for name, pk in requested_by(result, defs) if name == "session_ohlc_daily"
        } == set(expected), day
        cursor = result.cursor
