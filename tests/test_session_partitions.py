"""Session partitions: every weekly and monthly window of 2022..2025 against a calendar
computation written here, and the mappings that make a monthly backfill select exactly the
daily sessions and raw days it needs."""

from __future__ import annotations

import calendar
import itertools
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest

from mkt_platform.definitions import build_definitions
from mkt_platform.lib.partitions import (
    session_monthly_partitions_def,
    session_weekly_partitions_def,
)


def last_weekday(year: int, month: int, iso_weekday: int) -> date:
    days = calendar.monthrange(year, month)[1]
    candidates = [date(year, month, d) for d in range(days - 6, days + 1)]
    (found,) = [d for d in candidates if d.isoweekday() == iso_weekday]
    return found


def expected_monthly(iso_weekday: int, hour: int) -> list[tuple[datetime, datetime]]:
    starts = [
        datetime.combine(last_weekday(y, m, iso_weekday), datetime.min.time(), UTC).replace(
            hour=hour
        )
        for y in range(2022, 2027)
        for m in range(1, 13)
    ]
    return list(itertools.pairwise(starts))


@pytest.mark.parametrize(("weekday", "iso", "hour"), [("FRI", 5, 8), ("MON", 1, 0)])
def test_monthly_windows_2022_to_2025(monkeypatch, weekday, iso, hour):
    """Every monthly window from 2022 through 2025 runs from one month's last weekday at the
    anchor hour to the next month's, including year ends and five-week months."""
    monkeypatch.setenv("MKT_WEEKLY_SESSION_WEEKDAY", weekday)
    monkeypatch.setenv("MKT_SESSION_ANCHOR_HOUR", str(hour))
    monkeypatch.delenv("MKT_PARTITIONS_START", raising=False)
    partitions = session_monthly_partitions_def()
    expected = [w for w in expected_monthly(iso, hour) if w[0].year <= 2025]
    actual = [
        (window.start, window.end)
        for key in partitions.get_partition_keys(current_time=datetime(2026, 1, 31, tzinfo=UTC))
        if (window := partitions.time_window_for_partition_key(key)).start.year <= 2025
    ]
    assert actual == expected
    lengths = {(end - start).days for start, end in actual}
    assert lengths == {28, 35}
    if weekday == "FRI":
        windows = dict(actual)
        year_end = datetime(2022, 12, 30, 8, tzinfo=UTC)
        assert windows[year_end] == datetime(2023, 1, 27, 8, tzinfo=UTC)
        five_weeks = datetime(2023, 2, 24, 8, tzinfo=UTC)  # March 2023 has five Fridays
        assert windows[five_weeks] - five_weeks == timedelta(days=35)


def test_weekly_windows_start_on_the_weekday_at_the_anchor(monkeypatch):
    monkeypatch.delenv("MKT_WEEKLY_SESSION_WEEKDAY", raising=False)
    monkeypatch.delenv("MKT_SESSION_ANCHOR_HOUR", raising=False)
    partitions = session_weekly_partitions_def()
    keys = partitions.get_partition_keys(current_time=datetime(2026, 1, 1, tzinfo=UTC))
    windows = [partitions.time_window_for_partition_key(k) for k in keys]
    assert windows[0].start == datetime(2022, 1, 7, 8, tzinfo=UTC)  # first Friday of 2022
    assert all(
        w.start.isoweekday() == 5 and w.start.hour == 8 and w.end - w.start == timedelta(days=7)
        for w in windows
    )
    assert all(a.end == b.start for a, b in itertools.pairwise(windows))


def upstream_keys(graph, child: str, parent: str, child_key: str) -> list[str]:
    child_key_ = dg.AssetKey(child)
    parent_key = dg.AssetKey(parent)
    child_def = graph.get(child_key_).partitions_def
    parent_def = graph.get(parent_key).partitions_def
    mapping = graph.get_partition_mapping(child_key_, parent_key)
    result = mapping.get_upstream_mapped_partitions_result_for_partitions(
        child_def.subset_with_partition_keys([child_key]), child_def, parent_def
    )
    return sorted(result.partitions_subset.get_partition_keys())


def test_monthly_partition_needs_exactly_its_daily_sessions_and_raw_days(monkeypatch):
    """A backfill of the monthly partition 2023-01-27 (to 2023-02-24 08:00) selects the 28
    daily sessions 01-27..02-23 and, through them, the raw UTC days 01-27..02-24."""
    monkeypatch.delenv("MKT_WEEKLY_SESSION_WEEKDAY", raising=False)
    monkeypatch.delenv("MKT_SESSION_ANCHOR_HOUR", raising=False)
    graph = build_definitions().resolve_asset_graph()
    daily = upstream_keys(graph, "session_ohlc_monthly", "session_ohlc_daily", "2023-01-27")
    days = [(date(2023, 1, 27) + timedelta(days=i)).isoformat() for i in range(28)]
    assert daily == days
    raw = sorted(
        {
            key
            for day in daily
            for key in upstream_keys(graph, "int_candles_1h", "binance_klines_1h", day)
        }
    )
    assert raw == [*days, "2023-02-24"]
    weekly = upstream_keys(graph, "session_ohlc_weekly", "session_ohlc_daily", "2023-01-27")
    assert weekly == days[:7]
