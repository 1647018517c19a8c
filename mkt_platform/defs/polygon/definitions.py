"""Polygon domain: the client resource and the equity schedule (the raw datasets are declared
in ``datasets.py``).

The API key is read from ``POLYGON_API_KEY`` when a run uses the client (``dagster.EnvVar``:
the key is in no run configuration, no event and no log); without it a Polygon run fails
saying so, and the rest of the platform is unaffected.
"""

from __future__ import annotations

import os
from datetime import datetime

import dagster as dg

from mkt_platform import settings
from mkt_platform.defs.polygon.datasets import DATASETS
from mkt_platform.defs.polygon.resources import PolygonClient
from mkt_platform.lib import equity_calendar
from mkt_platform.lib.datasets import pull_schedule_status

SCHEDULE = "polygon_equity_schedule"


def equity_requests(moment: datetime) -> list[dg.RunRequest] | dg.SkipReason:
    """What the equity schedule pulls at ``moment`` (20:15 New York time on a weekday): the
    previous trading day (its news span has closed since, and Polygon's corrections of its
    bars meet the late-data rule) and the day itself, one run each; nothing on a holiday."""
    today = moment.astimezone(equity_calendar.NEW_YORK).date()
    if equity_calendar.session(today) is None:
        return dg.SkipReason(f"{today} is no NYSE trading day")
    previous = equity_calendar.previous_trading_day(today)
    return [
        dg.RunRequest(
            run_key=f"{SCHEDULE}:{moment.isoformat()}:{day}",
            partition_key=day.isoformat(),
            tags={"mkt/reason": "schedule"},
        )
        for day in (previous, today)
    ]


@dg.definitions
def defs() -> dg.Definitions:
    api_key = dg.EnvVar("POLYGON_API_KEY") if os.environ.get("POLYGON_API_KEY") else ""
    job = dg.define_asset_job(
        "polygon_equity_job",
        selection=[d.key for d in DATASETS],
        partitions_def=equity_calendar.trading_days_partitions_def(),
    )

    @dg.schedule(
        name=SCHEDULE,
        job=job,
        cron_schedule="15 20 * * 1-5",
        execution_timezone="America/New_York",
        default_status=pull_schedule_status(),
        description=(
            "Weekdays at 20:15 New York time, after the extended hours: pull SPY's and VIX's "
            "minute bars, the SPY options chosen at the open and their bars, and SPY's news, "
            "for the trading day and the one before it (its news span closed since); skipped "
            "on NYSE holidays. Stopped by default in replay mode."
        ),
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        return equity_requests(context.scheduled_execution_time)

    return dg.Definitions(
        resources={"polygon": PolygonClient(base_url=settings.polygon_base_url(), api_key=api_key)},
        jobs=[job],
        schedules=[_schedule],
    )
