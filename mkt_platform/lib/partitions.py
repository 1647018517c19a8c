"""Time partitions shared by every domain.

- Raw assets: daily partitions on UTC days, including today's (still open) day, which is
  pulled again until it has closed.
- Sessions: daily partitions whose windows are the options sessions, from the anchor hour
  (08:00 UTC by default, ``MKT_SESSION_ANCHOR_HOUR``) to the anchor hour the next day.
"""

from __future__ import annotations

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
