"""Late-data re-materialization: re-pull recent closed raw partitions, compare, repair.

A candle or trade that reaches the exchange late, a corrected value, or a day pulled before
it closed all leave a raw partition that differs from what the exchange now serves. The
``late_data_sensor`` re-pulls the last ``MKT_LATE_DATA_LOOKBACK_DAYS`` closed UTC days of
every raw asset (one paginated range per instrument for all of them, not a request per
partition), computes each day's content hash exactly as the asset does, and compares it with
the hash recorded on the partition's latest materialization. Where they differ it requests a
run of that raw partition tagged ``mkt/reason: late_data``; the asset's ``change`` metadata
then shows what changed (rows added, removed, changed, and their time range), and
declarative automation refreshes every daily, weekly and monthly session and options mart
over it. An unchanged day requests nothing.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from mkt_platform import settings
from mkt_platform.lib import lake
from mkt_platform.lib.datasets import RawDataset, latest_metadata

REASON_TAG = "mkt/reason"


def closed_days(now: datetime, lookback_days: int) -> list[str]:
    """The ``lookback_days`` UTC days that closed before ``now``, oldest first."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return [(today - timedelta(days=n)).strftime("%Y-%m-%d") for n in range(lookback_days, 0, -1)]


def late_data_requests(
    instance: dg.DagsterInstance,
    datasets: Sequence[RawDataset],
    clients: dict[str, Any],
    now: datetime,
    lookback_days: int,
    log: Any,
) -> list[dg.RunRequest]:
    """One run request per raw partition whose data changed at the exchange.

    Only partitions that were materialized with a content hash are compared (a partition
    never pulled is a backfill's job). A source whose re-pull fails is logged and skipped;
    the others are still compared.

    Returns:
        Run requests for single raw partitions, tagged ``mkt/reason: late_data`` with the
        recorded and new hashes; the run key holds the new hash, so the same change is
        requested once.
    """
    days = closed_days(now, lookback_days)
    requests = []
    for source in datasets:
        if source.late_data is None:
            continue
        recorded = {}
        for day in days:
            value = latest_metadata(instance, source.key, day).get("content_hash")
            if value is not None:
                recorded[day] = value.value
        if not recorded:
            continue
        try:
            tables = source.late_data(clients[source.resource], sorted(recorded), now)
        except Exception as exc:  # one exchange down must not stop the others
            log.warning(f"late data: re-pull of {source.key.to_user_string()} failed: {exc}")
            continue
        for day, old_hash in recorded.items():
            new_hash = lake.content_hash(tables[day])
            if new_hash == old_hash:
                continue
            log.info(
                f"late data: {source.key.to_user_string()} {day} changed at the exchange "
                f"({tables[day].num_rows} rows now); requesting a re-pull"
            )
            requests.append(
                dg.RunRequest(
                    run_key=f"late_data:{source.key.to_user_string()}:{day}:{new_hash[:16]}",
                    asset_selection=[source.key],
                    partition_key=day,
                    tags={
                        REASON_TAG: "late_data",
                        "mkt/previous_content_hash": old_hash[:16],
                        "mkt/new_content_hash": new_hash[:16],
                    },
                )
            )
    return requests


def build_late_data_sensor(datasets: Sequence[RawDataset]) -> dg.SensorDefinition:
    """The hourly sensor over every dataset that declares a re-pull (``late_data``)."""
    sources = [d for d in datasets if d.late_data is not None]

    @dg.sensor(
        name="late_data_sensor",
        minimum_interval_seconds=3600,
        default_status=dg.DefaultSensorStatus.RUNNING,
        asset_selection=[d.key for d in sources],
        required_resource_keys={d.resource for d in sources},
        description=(
            "Hourly, re-pulls the last MKT_LATE_DATA_LOOKBACK_DAYS (default 3) closed UTC days "
            "of every raw asset in one range per instrument, and re-materializes a partition "
            "whose content hash differs from its last materialization (tagged "
            "mkt/reason=late_data); automation then refreshes the sessions and marts over it. "
            "Unchanged days: no run."
        ),
    )
    def late_data_sensor(context: dg.SensorEvaluationContext, **_clients: Any) -> dg.SensorResult:
        # Dagster passes the required resources as keywords when the sensor is called
        # directly (tests), and only through the context under the daemon: read the context.
        requests = late_data_requests(
            context.instance,
            sources,
            {d.resource: getattr(context.resources, d.resource) for d in sources},
            settings.utcnow(),
            settings.late_data_lookback_days(),
            context.log,
        )
        if not requests:
            return dg.SensorResult(skip_reason="no raw partition changed at the exchange")
        return dg.SensorResult(run_requests=requests)

    return late_data_sensor
