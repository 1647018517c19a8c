"""Gap repair of the Binance kline partitions, on a schedule.

The replaced pipeline re-pulled the missing minutes of the last 7 days on a schedule. Here the
schedule reads each closed partition's latest materialization metadata, and requests a
``gap_repair`` run (which re-pulls exactly the missing ranges) only for partitions that still
have unrepaired candles. A range the exchange itself has no candles for is recorded as a known
gap by that run, so the next evaluation requests nothing for it: no partition is re-pulled
forever.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from mkt_platform import settings
from mkt_platform.lib.datasets import latest_materialization, pull_schedule_status


def gap_repair_requests(
    instance: dg.DagsterInstance,
    asset_key: dg.AssetKey,
    now: datetime,
    lookback_days: int,
    partitions_def: dg.PartitionsDefinition,
) -> list[dg.RunRequest]:
    """Run requests for the closed partitions of the last ``lookback_days`` UTC days whose
    latest materialization reports unrepaired candles.

    Each request re-pulls one partition with ``gap_repair`` set, tagged ``mkt/reason:
    gap_repair``; its run key names the materialization it repairs, so the same state never
    launches twice.
    """
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    existing = set(partitions_def.get_partition_keys(current_time=now))
    requests = []
    for days_back in range(lookback_days, 0, -1):
        partition_key = (today - timedelta(days=days_back)).strftime("%Y-%m-%d")
        if partition_key not in existing:
            continue
        record = latest_materialization(instance, asset_key, partition_key)
        if record is None or record.asset_materialization is None:
            continue  # never pulled: the pull schedules and backfills own that
        unrepaired = record.asset_materialization.metadata.get("unrepaired_candles")
        if unrepaired is None or not unrepaired.value:
            continue
        requests.append(
            dg.RunRequest(
                run_key=f"gap_repair:{partition_key}:{record.storage_id}",
                partition_key=partition_key,
                run_config={
                    "ops": {asset_key.to_python_identifier(): {"config": {"gap_repair": True}}}
                },
                tags={"mkt/reason": "gap_repair"},
            )
        )
    return requests


def build_gap_repair_schedule(asset: dg.AssetsDefinition) -> dg.ScheduleDefinition:
    """Hourly schedule that repairs the gaps of ``asset``'s recent closed partitions."""
    asset_key = asset.key
    job = dg.define_asset_job(
        f"{asset_key.to_python_identifier()}_gap_repair",
        selection=[asset_key],
        description=f"Re-pull only the missing candle ranges of {asset_key.to_user_string()}.",
    )

    @dg.schedule(
        name=f"{asset_key.to_python_identifier()}_gap_repair_schedule",
        job=job,
        cron_schedule="20 * * * *",
        execution_timezone="UTC",
        default_status=pull_schedule_status(),
        description=(
            f"Every hour at :20, look at the last MKT_GAP_REPAIR_LOOKBACK_DAYS (default 7) closed "
            f"UTC days of {asset_key.to_user_string()} and re-pull exactly the candle ranges "
            "still missing. Ranges the exchange has no candles for (a halt) become known gaps "
            "after one re-pull and are not requested again."
        ),
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        now = context.scheduled_execution_time or settings.utcnow()
        requests = gap_repair_requests(
            context.instance,
            asset_key,
            now,
            settings.gap_repair_lookback_days(),
            asset.partitions_def,
        )
        if not requests:
            return dg.SkipReason("no unrepaired gaps in the lookback window")
        return requests

    return _schedule
