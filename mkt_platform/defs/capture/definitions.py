"""The captured streams in Dagster: one asset per captured dataset, partitioned by UTC hour,
whose partitions appear as the capture service closes its hours.

The capture service (``mkt-platform capture``, :mod:`mkt_platform.capture.service`) runs
outside Dagster and writes the lake itself, so these are external assets (``AssetSpec``s:
Dagster does not materialize them) rather than observable source assets: each closed hour
is recorded as a materialization of its partition by ``capture_hours_sensor``, so the
partitions show as materialized in the UI and automation downstream sees them as new data,
as it sees a pulled day. An hour changed after it closed (a late row merged into it) is
recorded again.

What a gap in a stream (a disconnect, the capture stopped) loses, and what gets it back:

* Hyperliquid 1m candles: recoverable for about 3.5 days. Hyperliquid serves the most recent
  5,000 candles of an interval over REST (``candleSnapshot``); ``capture_gap_sensor`` finds
  the closed hours missing minutes of a coin that lists ``1m`` and requests the REST asset
  ``hyperliquid_candles_1m`` for their days; the mart ``candles_1m`` merges both by Kirby's
  rule (a REST value replaces a captured one, never with NULL). Older gaps are reported by
  the sensor as beyond reach.
* Hyperliquid asset contexts (open interest, mark, oracle and mid price per minute): not
  recoverable: Hyperliquid keeps no history of them. The funding rate itself is recoverable
  hourly (``hyperliquid_funding_rates``, from ``fundingHistory``).
* Binance liquidations: not recoverable: Binance offers no dependable REST history of
  market-wide liquidations (``GET /fapi/v1/allForceOrders`` is restricted, as third-party
  clients report; ``GET /fapi/v1/forceOrders`` returns only the caller's own orders). The
  heartbeat's connect count and the silence alert say when a gap happened.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import dagster as dg

from mkt_platform import settings
from mkt_platform.capture.frames import CANDLES, DATASETS, MINUTE_MS, Dataset
from mkt_platform.capture.sink import HOUR_MS, dataset_folder, hour_files
from mkt_platform.defs.hyperliquid.assets import candle_coins
from mkt_platform.defs.hyperliquid.datasets import CANDLES_1M
from mkt_platform.lib import lake

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
                    str(dataset_folder(lake.lake_root(), d) / "date=*" / "hour=*")
                )
            },
        )
        for d in DATASETS
    ]


def closed_hours(dataset: Dataset) -> list[tuple[datetime, lake.FoundFile]]:
    """The closed hours of ``dataset`` in the lake (local or on S3), each with its file
    (path, modification time, size) from one listing, in time order."""
    return hour_files(lake.lake_root(), dataset, "part.parquet")


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
        for start, found in closed_hours(dataset):
            path, mtime = found.path, found.modified_ns
            if mtime <= newest:
                continue
            partition = f"{start:%Y-%m-%d-%H}:00"
            metadata = lake.read_metadata(path)
            events.append(
                dg.AssetMaterialization(
                    key,
                    partition=partition,
                    metadata={
                        "path": dg.MetadataValue.path(str(path)),
                        "dagster/row_count": metadata.num_rows,
                        "file_bytes": found.size,
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


#: How far back Hyperliquid's REST API serves 1m candles: its most recent 5,000.
REST_1M_REACH = timedelta(minutes=5000)


def missing_minutes(path: lake.LakePath, start: datetime, coins: tuple[str, ...]) -> dict[str, int]:
    """The minutes of the hour starting at ``start`` that the closed hour file ``path`` of
    the captured 1m candles lacks, per coin of ``coins`` (coins with none missing left out)."""
    table = lake.read_table(path, columns=["coin", "open_time"])
    first = int(start.timestamp() * 1000)
    minutes: dict[str, set[int]] = defaultdict(set)
    for coin, opened in zip(
        table["coin"].to_pylist(), table["open_time"].cast("int64").to_pylist(), strict=True
    ):
        if first <= opened < first + HOUR_MS:
            minutes[coin].add(opened)
    per_hour = HOUR_MS // MINUTE_MS
    return {c: per_hour - len(minutes[c]) for c in coins if len(minutes[c]) < per_hour}


@dg.sensor(
    name="capture_gap_sensor",
    minimum_interval_seconds=300,
    asset_selection=[CANDLES_1M.key],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "The REST backfill of the captured 1m candles: for each closed hour of "
        "hyperliquid_candles_1m_stream missing minutes of a coin that lists 1m, requests "
        "hyperliquid_candles_1m (candleSnapshot) for its UTC day, which the mart candles_1m "
        "merges by Kirby's rule. Hours older than Hyperliquid's reach (its last 5,000 1m "
        "candles) are reported, not requested."
    ),
)
def capture_gap_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    newest = int(context.cursor) if context.cursor else 0
    coins = candle_coins("1m")
    if not coins:
        return dg.SensorResult(
            cursor=context.cursor,
            skip_reason="no Hyperliquid perp lists 1m in the instrument universe: nothing to "
            "backfill",
        )
    reach_start = settings.utcnow() - REST_1M_REACH
    gaps: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)
    beyond: list[str] = []
    seen = newest
    for start, found in closed_hours(CANDLES):
        if found.modified_ns <= newest:
            continue
        seen = max(seen, found.modified_ns)
        missing = missing_minutes(found.path, start, coins)
        if not missing:
            continue
        if start < reach_start:
            beyond.append(f"{start:%Y-%m-%d %H}:00")
            continue
        gaps[f"{start:%Y-%m-%d}"][f"{start:%H}:00"] = missing
    lost = (
        f"captured 1m candles missing minutes in {len(beyond)} closed hour(s) beyond "
        f"Hyperliquid's REST reach (its last 5,000 1m candles), not recoverable: "
        f"{', '.join(beyond)}"
    )
    if beyond:
        context.log.warning(lost)
    requests = [
        dg.RunRequest(
            partition_key=day,
            run_key=f"capture-gap:{day}:{','.join(sorted(hours))}:{seen}",
            tags={"mkt/reason": "capture_gap"},
        )
        for day, hours in sorted(gaps.items())
    ]
    for day, hours in sorted(gaps.items()):
        context.log.info(f"{day}: REST backfill of the captured 1m candles missing {hours}")
    return dg.SensorResult(
        run_requests=requests,
        cursor=str(seen),
        skip_reason=None
        if requests
        else "no closed hour of captured 1m candles lacks a minute within REST reach"
        + (f"; {lost}" if beyond else ""),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=capture_specs(), sensors=[capture_hours_sensor, capture_gap_sensor]
    )
