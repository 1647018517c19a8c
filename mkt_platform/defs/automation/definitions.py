"""Schedules for the raw pulls (the replaced pipeline's cron table) and the sensor that lets
every derived asset refresh itself by declarative automation.

- one schedule per :class:`~mkt_platform.lib.datasets.Refresh` the raw datasets declare
  (``binance_klines_refresh_schedule`` every 5 minutes for the 1m klines, which no mart
  reads; ``hourly_sources_refresh_schedule`` hourly at :02 for the rest): the current UTC
  day of each of its datasets; the previous day too while its last pull was made before it
  closed (so the day is closed by the first pull after midnight, even if the daemon was down
  at midnight). Stopped by default in replay mode.
- ``mkt_automation_sensor``: evaluates the assets' ``AutomationCondition`` every 30 seconds; the
  dbt marts (daily, weekly sessions, options, funding) are requested as soon as the raw
  partitions they cover change, including one re-pulled within the lookback window.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import dagster as dg

from mkt_platform.defs.registry import raw_datasets
from mkt_platform.lib.datasets import RawDataset, Refresh, latest_metadata, pull_schedule_status


def refresh_requests(
    instance: dg.DagsterInstance,
    assets: Sequence[dg.AssetKey],
    now: datetime,
    schedule: str,
) -> list[dg.RunRequest]:
    """The partitions a refresh tick at ``now`` pulls: today's UTC day, and yesterday's while
    any of ``assets`` was last pulled for it before the day closed (or never).

    Returns one run request per partition, for all ``assets``, tagged
    ``mkt/reason: schedule``; the run key is the schedule, tick time and partition.
    """
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday = (today - timedelta(days=1)).strftime("%Y-%m-%d")
    keys = [today.strftime("%Y-%m-%d")]
    if not all(_closed(latest_metadata(instance, key, yesterday)) for key in assets):
        keys.insert(0, yesterday)
    return [
        dg.RunRequest(
            run_key=f"{schedule}:{now.isoformat()}:{key}",
            partition_key=key,
            asset_selection=list(assets),
            tags={"mkt/reason": "schedule"},
        )
        for key in keys
    ]


def _closed(metadata: dict) -> bool:
    """Whether a partition's latest pull was made after its day had closed."""
    flag = metadata.get("window_closed")
    return bool(flag is not None and flag.value)


def refresh_schedules(datasets: Sequence[RawDataset]) -> list[dg.ScheduleDefinition]:
    """One schedule per :class:`Refresh` the datasets declare, pulling all of its datasets.

    In replay mode (every exchange base URL on this machine, see :func:`pull_schedule_status`)
    they start stopped: the replay holds recorded history and no "today", so each tick would
    only pull empty partitions. They can still be started from the UI.
    """
    by_refresh: dict[Refresh, list[RawDataset]] = {}
    for dataset in datasets:
        if dataset.refresh is not None:
            by_refresh.setdefault(dataset.refresh, []).append(dataset)
    status = pull_schedule_status()
    return [
        _refresh_schedule(refresh, [d.key for d in members], status, _names(members))
        for refresh, members in by_refresh.items()
    ]


def _names(datasets: Sequence[RawDataset]) -> str:
    names = [d.name for d in datasets]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _refresh_schedule(
    refresh: Refresh,
    assets: Sequence[dg.AssetKey],
    status: dg.DefaultScheduleStatus,
    names: str,
) -> dg.ScheduleDefinition:
    name = refresh.name
    job = dg.define_asset_job(f"{name}_job", selection=list(assets))

    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=refresh.cron,
        execution_timezone="UTC",
        default_status=status,
        description=(
            f"{refresh.description}: pull {names} of the current UTC day, and of the previous "
            "day until a pull made after midnight has closed it. The marts over them then "
            "refresh by declarative automation. Stopped by default in replay mode (the "
            "recordings hold no today)."
        ),
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        return refresh_requests(context.instance, assets, context.scheduled_execution_time, name)

    return _schedule


@dg.definitions
def defs() -> dg.Definitions:
    """Over every raw dataset of the registry."""
    return build_defs(raw_datasets())


def build_defs(datasets: Sequence[RawDataset]) -> dg.Definitions:
    sensor = dg.AutomationConditionSensorDefinition(
        "mkt_automation_sensor",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description=(
            "Evaluates every asset's AutomationCondition: each dbt mart partition (daily and "
            "weekly sessions, options, funding) is requested when the raw partitions it "
            "covers were re-materialized, within MKT_AUTOMATION_LOOKBACK_DAYS (3) of the "
            "latest partition. Nothing is requested when nothing upstream changed."
        ),
    )
    return dg.Definitions(schedules=refresh_schedules(datasets), sensors=[sensor])
