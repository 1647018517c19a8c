"""Schedules for the raw pulls (the replaced pipeline's cron table) and the sensor that lets
every derived asset refresh itself by declarative automation.

- one schedule per :class:`~mkt_platform.lib.datasets.Refresh` the raw datasets declare
  (``binance_five_minute_refresh_schedule`` every 5 minutes: the 1m klines, which no mart
  reads, and the spot order-book, 24h-ticker and recent-trades snapshots;
  ``hourly_sources_refresh_schedule`` hourly at :02 for the rest, and the Hyperliquid asset
  contexts snapshot): one run a tick for the current UTC day of all its datasets; another
  for the previous day too while its last pull was made before it closed (so the day is
  closed by the first pull after midnight, even if the daemon was down at midnight), without
  the snapshots (a snapshot is of now). Stopped by default in replay mode.
- two sensors that evaluate the assets' ``AutomationCondition``, each as often as its assets'
  raw inputs can change: ``mkt_automation_sensor`` every 30 seconds for the crypto marts
  (daily, weekly, monthly sessions, options, funding, capture), pulled hourly and captured
  by the minute; ``equity_automation_sensor`` every 5 minutes for the equity marts (the dbt
  tag ``equity_daily``), whose Polygon inputs are pulled once a trading day. A mart is
  requested as soon as the raw partitions it covers change, including one re-pulled within
  the lookback window.

Why two: a sensor's tick reads and writes its whole cursor, which holds a few partition
subsets per condition node of every asset it targets, and each subset embeds its partitions
definition. The NYSE trading-day definition carries every holiday since 2020 as an
exclusion (7.9 KB serialized), so the five equity assets made 2.2 MB of a 2.8 MB cursor, and
one tick cost 0.5-0.6 CPU-s every 30 seconds. Apart, the 30-second tick reads a 0.6 MB cursor.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import dagster as dg

from mkt_platform.defs.equity import definitions as equity
from mkt_platform.defs.registry import raw_datasets
from mkt_platform.lib.datasets import RawDataset, Refresh, latest_metadata, pull_schedule_status


def refresh_requests(
    instance: dg.DagsterInstance,
    assets: Sequence[dg.AssetKey],
    now: datetime,
    schedule: str,
    snapshots: Sequence[dg.AssetKey] = (),
) -> list[dg.RunRequest]:
    """The runs a refresh tick at ``now`` requests: today's UTC day of ``assets`` and of the
    ``snapshots`` (taken now, into today's partition), in one run; and, first, yesterday's of
    ``assets`` alone while any of them was last pulled for it before the day closed (or
    never).

    Returns one run request per partition, tagged ``mkt/reason: schedule``; the run key is
    the schedule, tick time and partition.
    """
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday = (today - timedelta(days=1)).strftime("%Y-%m-%d")
    runs = [(today.strftime("%Y-%m-%d"), [*assets, *snapshots])]
    if assets and not all(_closed(latest_metadata(instance, key, yesterday)) for key in assets):
        runs.insert(0, (yesterday, list(assets)))
    return [
        dg.RunRequest(
            run_key=f"{schedule}:{now.isoformat()}:{key}",
            partition_key=key,
            asset_selection=selection,
            tags={"mkt/reason": "schedule"},
        )
        for key, selection in runs
    ]


def _closed(metadata: dict) -> bool:
    """Whether a partition's latest pull was made after its day had closed."""
    flag = metadata.get("window_closed")
    return bool(flag is not None and flag.value)


def refresh_schedules(datasets: Sequence[RawDataset]) -> list[dg.ScheduleDefinition]:
    """One schedule per :class:`Refresh` the datasets declare, pulling all of its datasets
    (and taking its snapshots) in one run a tick.

    In replay mode (every exchange base URL on this machine, see :func:`pull_schedule_status`)
    they start stopped: the replay holds recorded history and no "today", so each tick would
    only pull empty partitions. They can still be started from the UI.
    """
    by_refresh: dict[Refresh, list[RawDataset]] = {}
    for dataset in datasets:
        if dataset.refresh is not None:
            by_refresh.setdefault(dataset.refresh, []).append(dataset)
    status = pull_schedule_status()
    return [_refresh_schedule(refresh, members, status) for refresh, members in by_refresh.items()]


def _names(datasets: Sequence[RawDataset]) -> str:
    names = [d.name for d in datasets]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _refresh_schedule(
    refresh: Refresh, datasets: Sequence[RawDataset], status: dg.DefaultScheduleStatus
) -> dg.ScheduleDefinition:
    name = refresh.name
    pulled = [d for d in datasets if not d.snapshot]
    taken = [d for d in datasets if d.snapshot]
    pulls, snapshots = [d.key for d in pulled], [d.key for d in taken]
    job = dg.define_asset_job(f"{name}_job", selection=[*pulls, *snapshots])
    description = f"{refresh.description}, in one run"
    if pulled:
        description += (
            f": pull {_names(pulled)} of the current UTC day, and of the previous day until a "
            "pull made after midnight has closed it"
        )
    if taken:
        description += (
            f"; snapshot {_names(taken)} into today's partition (no history exists: a snapshot "
            "not taken is lost)"
        )
    description += (
        ". The marts over them then refresh by declarative automation. Stopped by default in "
        "replay mode (the recordings hold no today)."
    )

    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=refresh.cron,
        execution_timezone="UTC",
        default_status=status,
        description=description,
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        return refresh_requests(
            context.instance, pulls, context.scheduled_execution_time, name, snapshots
        )

    return _schedule


#: The assets of ``equity_automation_sensor``: the equity marts and the NYSE calendar seed
#: (dagster-dbt makes each dbt tag an asset tag with an empty value).
EQUITY_ASSETS = dg.AssetSelection.tag(equity.TAG, "")
#: How often ``equity_automation_sensor`` ticks: its raw inputs are pulled once a trading day
#: (``polygon_equity_schedule``, 20:15 New York), so a mart waits at most 5 minutes more.
EQUITY_INTERVAL_SECONDS = 300

_RULE = (
    "each dbt mart partition is requested when the raw partitions it covers were "
    "re-materialized, within MKT_AUTOMATION_LOOKBACK_DAYS (3) of the latest partition. "
    "Nothing is requested when nothing upstream changed."
)


def automation_sensors() -> list[dg.AutomationConditionSensorDefinition]:
    """The two sensors of declarative automation, over disjoint assets (see the module
    docstring): ``mkt_automation_sensor`` (every asset but :data:`EQUITY_ASSETS`, every 30 s)
    and ``equity_automation_sensor`` (:data:`EQUITY_ASSETS`, every 5 minutes)."""
    return [
        dg.AutomationConditionSensorDefinition(
            "mkt_automation_sensor",
            target=dg.AssetSelection.all() - EQUITY_ASSETS,
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=30,
            description=(
                "Evaluates the AutomationCondition of every asset but the equity marts "
                f"(daily, weekly, monthly sessions, options, funding, capture): {_RULE}"
            ),
        ),
        dg.AutomationConditionSensorDefinition(
            "equity_automation_sensor",
            target=EQUITY_ASSETS,
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=EQUITY_INTERVAL_SECONDS,
            description=(
                "Evaluates the AutomationCondition of the equity marts (dbt tag equity_daily), "
                "every 5 minutes: Polygon is pulled once a trading day, and a tick over their "
                f"NYSE trading-day partitions costs more than one over the crypto marts. {_RULE}"
            ),
        ),
    ]


@dg.definitions
def defs() -> dg.Definitions:
    """Over every raw dataset of the registry."""
    return build_defs(raw_datasets())


def build_defs(datasets: Sequence[RawDataset]) -> dg.Definitions:
    return dg.Definitions(schedules=refresh_schedules(datasets), sensors=automation_sensors())
