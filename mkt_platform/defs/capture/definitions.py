"""The captured streams in Dagster: one asset per captured dataset, partitioned by UTC hour,
whose partitions appear as the capture service closes its hours.

The capture service (``mkt-platform capture``, :mod:`mkt_platform.capture.service`) runs
outside Dagster and writes the lake itself, so these are external assets (``AssetSpec``s:
Dagster does not materialize them) rather than observable source assets: each closed hour
is recorded as a materialization of its partition by ``capture_hours_sensor``, so the
partitions show as materialized in the UI and automation downstream sees them as new data,
as it sees a pulled day. An hour changed after it closed (a late row merged into it) is
recorded again.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq

from mkt_platform import settings
from mkt_platform.capture.frames import DATASETS, Dataset
from mkt_platform.capture.sink import dataset_folder, hour_files

#: The group of the captured datasets' assets.
GROUP = "raw_capture"


def hourly_partitions_def() -> dg.HourlyPartitionsDefinition:
    """UTC-hour partitions from ``MKT_PARTITIONS_START`` (keys ``YYYY-MM-DD-HH:00``)."""
    return dg.HourlyPartitionsDefinition(
        start_date=f"{settings.partitions_start()}-00:00", timezone="UTC"
    )


def asset_key(dataset: Dataset) -> dg.AssetKey:
    """``<venue>_<dataset>``, e.g. ``binance_futures_liquidations_stream``."""
    return dg.AssetKey(f"{dataset.venue}_{dataset.name}")


DESCRIPTIONS = {
    "candles_1m_stream": "Hyperliquid 1m candles of the universe's perps from the WebSocket "
    "candle subscription: the latest push of each (coin, minute); prices in USDC, volume in "
    "the base coin, DECIMAL(38,8).",
    "asset_contexts_1m_stream": "Hyperliquid asset contexts (funding rate, open interest in "
    "contracts, oracle, mark and mid price in USDC) from the activeAssetCtx subscription: "
    "the latest of each (coin, minute received).",
    "liquidations_stream": "Binance USD-M futures liquidations of every symbol "
    "(!forceOrder@arr): every liquidation once; quantity in contracts, prices in USDT.",
}


def capture_specs() -> list[dg.AssetSpec]:
    """The external assets of the captured datasets."""
    partitions = hourly_partitions_def()
    return [
        dg.AssetSpec(
            asset_key(d),
            group_name=GROUP,
            partitions_def=partitions,
            description=DESCRIPTIONS[d.name]
            + " Written by `mkt-platform capture`, one Parquet file per UTC hour; a partition "
            "appears when its hour is closed.",
            kinds={"parquet"},
            owners=["team:market-data"],
            metadata={
                "lake_path": dg.MetadataValue.path(
                    str(dataset_folder(settings.lake_dir(), d) / "date=*" / "hour=*")
                )
            },
        )
        for d in DATASETS
    ]


def closed_hours(dataset: Dataset) -> list[tuple[str, int, Path]]:
    """The closed hours of ``dataset`` in the lake: ``(partition key, mtime ns, path)``."""
    return [
        (f"{start:%Y-%m-%d-%H}:00", path.stat().st_mtime_ns, path)
        for start, path in hour_files(settings.lake_dir(), dataset, "part.parquet")
    ]


@dg.sensor(
    name="capture_hours_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Records each hour the capture service has closed (and each closed hour changed "
        "since) as a materialization of its partition of the captured datasets' assets."
    ),
)
def capture_hours_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    seen: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    events = []
    for dataset in DATASETS:
        key = asset_key(dataset)
        newest = seen.get(key.to_user_string(), 0)
        for partition, mtime, path in closed_hours(dataset):
            if mtime <= newest:
                continue
            metadata = pq.read_metadata(path)
            events.append(
                dg.AssetMaterialization(
                    key,
                    partition=partition,
                    metadata={
                        "path": dg.MetadataValue.path(str(path)),
                        "dagster/row_count": metadata.num_rows,
                        "file_bytes": path.stat().st_size,
                        "closed_at": dg.MetadataValue.timestamp(
                            datetime.fromtimestamp(mtime / 1e9, UTC)
                        ),
                    },
                )
            )
            seen[key.to_user_string()] = max(seen.get(key.to_user_string(), 0), mtime)
    return dg.SensorResult(
        asset_events=events,
        cursor=json.dumps(seen, sort_keys=True),
        skip_reason=None if events else "no hour closed since the last tick",
    )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=capture_specs(), sensors=[capture_hours_sensor])
