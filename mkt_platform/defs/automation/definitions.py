"""Schedules for the raw pulls (the replaced pipeline's cron table) and the sensor that lets
every derived asset refresh itself by declarative automation.

- ``binance_klines_refresh_schedule``: every 5 minutes, Binance 1h and 1m klines of the current
  UTC day; the previous day too while its last pull was made before it closed (so the day is
  closed by the first pull after midnight, even if the daemon was down at midnight).
- ``hourly_sources_refresh_schedule``: every hour at :02, Hyperliquid candles and funding and
  Deribit option trades, with the same rule for the previous day.
- ``mkt_automation_sensor``: evaluates the assets' ``AutomationCondition`` every 30 seconds; the
  dbt marts (daily, weekly sessions, options, funding) are requested as soon as the raw
  partitions they cover change, including one re-pulled within the lookback window.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import dagster as dg

from mkt_platform.defs.binance.assets import latest_metadata

BINANCE_KLINES = (dg.AssetKey("binance_klines_1h"), dg.AssetKey("binance_klines_1m"))
HOURLY_SOURCES = (
    dg.AssetKey("hyperliquid_candles_1h"),
    dg.AssetKey("hyperliquid_funding_rates"),
    dg.AssetKey("deribit_option_trades"),
)


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


def _refresh_schedule(
    name: str, assets: Sequence[dg.AssetKey], cron: str, description: str
) -> dg.ScheduleDefinition:
    job = dg.define_asset_job(f"{name}_job", selection=list(assets))

    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest]:
        return refresh_requests(context.instance, assets, context.scheduled_execution_time, name)

    return _schedule


def build_defs() -> dg.Definitions:
    binance = _refresh_schedule(
        "binance_klines_refresh_schedule",
        BINANCE_KLINES,
        "*/5 * * * *",
        "Every 5 minutes (as the replaced pipeline did): pull Binance 1h and 1m klines of the "
        "current UTC day, and of the previous day until a pull made after midnight has closed "
        "it. The session marts then refresh by declarative automation.",
    )
    hourly = _refresh_schedule(
        "hourly_sources_refresh_schedule",
        HOURLY_SOURCES,
        "2 * * * *",
        "Every hour at :02: pull Hyperliquid 1h candles and funding rates and Deribit option "
        "trades of the current UTC day, and of the previous day until a pull after midnight "
        "has closed it. The session, options and funding marts then refresh by automation.",
    )
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
    return dg.Definitions(schedules=[binance, hourly], sensors=[sensor])
