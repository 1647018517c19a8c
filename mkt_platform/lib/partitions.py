"""Time partitions shared by every domain.

- Raw assets: daily partitions on UTC days, including today's (still open) day, which is
  pulled again until it has closed.
- Sessions: daily partitions whose windows are the options sessions, from the anchor hour
  (08:00 UTC by default, ``MKT_SESSION_ANCHOR_HOUR``) to the anchor hour the next day;
  weekly partitions from the session weekday (Friday, ``MKT_WEEKLY_SESSION_WEEKDAY``) at the
  anchor hour to the next one; monthly partitions from the last session weekday of a month to
  the last one of the next month.
"""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg

from mkt_platform import settings


def raw_daily_partitions_def() -> dg.DailyPartitionsDefinition:
    """UTC-day partitions from ``MKT_PARTITIONS_START``; the last one is today (partial)."""
    return dg.DailyPartitionsDefinition(
        start_date=settings.partitions_start(), timezone="UTC", end_offset=1
    )


def session_daily_partitions_def() -> dg.DailyPartitionsDefinition:
    """Daily session partitions: key ``YYYY-MM-DD`` is the session from that day's anchor hour.

    Only sessions that have ended are partitions (a session in progress is not yet a row).
    """
    return dg.DailyPartitionsDefinition(
        start_date=settings.partitions_start(),
        hour_offset=settings.session_anchor_hour(),
        timezone="UTC",
    )


def _first_weekday_on_or_after(day: date, iso_weekday: int) -> date:
    return day + timedelta(days=(iso_weekday - day.isoweekday()) % 7)


def session_weekly_partitions_def() -> dg.WeeklyPartitionsDefinition:
    """Weekly session partitions: key ``YYYY-MM-DD`` is the session from that day (the session
    weekday, ``MKT_WEEKLY_SESSION_WEEKDAY``, Friday by default) at the anchor hour to the same
    weekday and hour a week later (168 hours). Only ended sessions are partitions."""
    weekday = settings.weekly_session_weekday()
    first = _first_weekday_on_or_after(date.fromisoformat(settings.partitions_start()), weekday)
    return dg.WeeklyPartitionsDefinition(
        start_date=first.isoformat(),
        day_offset=weekday % 7,  # Dagster counts weekdays from Sunday = 0
        hour_offset=settings.session_anchor_hour(),
        timezone="UTC",
    )


def _last_weekday_of_month(year: int, month: int, iso_weekday: int) -> date:
    following = date(year + month // 12, month % 12 + 1, 1)
    last_day = following - timedelta(days=1)
    return last_day - timedelta(days=(last_day.isoweekday() - iso_weekday) % 7)


def session_monthly_partitions_def() -> dg.TimeWindowPartitionsDefinition:
    """Monthly session partitions: key ``YYYY-MM-DD`` is the session from the last session
    weekday of a month (the last Friday by default) at the anchor hour to the last one of the
    next month (4 or 5 weeks). Only ended sessions are partitions.

    The cron ``M H * * L<dow>`` ("the last <weekday> of the month", croniter's ``L``) makes
    each window run exactly from one last weekday to the next, so the time-window mapping
    from the daily sessions selects exactly the 28 or 35 daily sessions of a month.
    """
    weekday = settings.weekly_session_weekday()
    start = date.fromisoformat(settings.partitions_start())
    first = _last_weekday_of_month(start.year, start.month, weekday)
    if first < start:
        following = date(start.year + start.month // 12, start.month % 12 + 1, 1)
        first = _last_weekday_of_month(following.year, following.month, weekday)
    hour = settings.session_anchor_hour()
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule=f"0 {hour} * * L{weekday % 7}",
        start=f"{first.isoformat()}-{hour:02d}:00",
        fmt="%Y-%m-%d",
        timezone="UTC",
    )


#: Raw partitions (UTC days) per run of a backfill. A run pulls its days as one paginated
#: range, so a week per run keeps the requests few, while the runs of a long backfill go in
#: parallel up to the deployment's run limit, and a failure costs a week, not the backfill.
RAW_PARTITIONS_PER_RUN = 7


def raw_backfill_policy() -> dg.BackfillPolicy:
    """Backfill policy of every raw asset: runs of up to ``RAW_PARTITIONS_PER_RUN`` days."""
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=RAW_PARTITIONS_PER_RUN)
