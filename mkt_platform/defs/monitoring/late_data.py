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

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pyarrow as pa

from mkt_platform import settings
from mkt_platform.defs.binance.assets import kline_day_tables, latest_metadata
from mkt_platform.defs.binance.resources import BinanceSpotClient
from mkt_platform.defs.deribit.assets import option_trade_day_tables
from mkt_platform.defs.deribit.resources import DeribitClient
from mkt_platform.defs.hyperliquid.assets import candle_day_tables, funding_day_tables
from mkt_platform.defs.hyperliquid.resources import HyperliquidClient
from mkt_platform.lib import lake

REASON_TAG = "mkt/reason"


@dataclass(frozen=True)
class LateDataSource:
    """How to re-pull one raw asset: its key, the resource it pulls with, and a function
    ``(client, partition_keys, now) -> {partition_key: table as the asset writes it}``."""

    key: dg.AssetKey
    resource: str
    day_tables: Callable[[Any, list[str], datetime], dict[str, pa.Table]]


SOURCES = (
    LateDataSource(
        dg.AssetKey("binance_klines_1h"),
        "binance",
        lambda client, keys, now: kline_day_tables(client, "1h", keys, now),
    ),
    LateDataSource(
        dg.AssetKey("binance_klines_1m"),
        "binance",
        lambda client, keys, now: kline_day_tables(client, "1m", keys, now),
    ),
    LateDataSource(dg.AssetKey("hyperliquid_candles_1h"), "hyperliquid", candle_day_tables),
    LateDataSource(dg.AssetKey("hyperliquid_funding_rates"), "hyperliquid", funding_day_tables),
    LateDataSource(dg.AssetKey("deribit_option_trades"), "deribit", option_trade_day_tables),
)


def closed_days(now: datetime, lookback_days: int) -> list[str]:
    """The ``lookback_days`` UTC days that closed before ``now``, oldest first."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return [(today - timedelta(days=n)).strftime("%Y-%m-%d") for n in range(lookback_days, 0, -1)]


def late_data_requests(
    instance: dg.DagsterInstance,
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
    for source in SOURCES:
        recorded = {}
        for day in days:
            value = latest_metadata(instance, source.key, day).get("content_hash")
            if value is not None:
                recorded[day] = value.value
        if not recorded:
            continue
        try:
            tables = source.day_tables(clients[source.resource], sorted(recorded), now)
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


@dg.sensor(
    name="late_data_sensor",
    minimum_interval_seconds=3600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    asset_selection=[source.key for source in SOURCES],
    description=(
        "Hourly, re-pulls the last MKT_LATE_DATA_LOOKBACK_DAYS (default 3) closed UTC days of "
        "every raw asset in one range per instrument, and re-materializes a partition whose "
        "content hash differs from its last materialization (tagged mkt/reason=late_data); "
        "automation then refreshes the sessions and marts over it. Unchanged days: no run."
    ),
)
def late_data_sensor(
    context: dg.SensorEvaluationContext,
    binance: BinanceSpotClient,
    hyperliquid: HyperliquidClient,
    deribit: DeribitClient,
) -> dg.SensorResult:
    now = settings.utcnow()
    requests = late_data_requests(
        context.instance,
        {"binance": binance, "hyperliquid": hyperliquid, "deribit": deribit},
        now,
        settings.late_data_lookback_days(),
        context.log,
    )
    if not requests:
        return dg.SensorResult(skip_reason="no raw partition changed at the exchange")
    return dg.SensorResult(run_requests=requests)
