"""Binance's raw datasets: spot klines, 1h and 1m (``GET /api/v3/klines``), and snapshots of
the spot order books (``GET /api/v3/depth``).

Each is declared once here; the asset, its checks, freshness, late-data re-pulls, refresh and
gap-repair schedules derive from the declaration (see :mod:`mkt_platform.lib.datasets`).
"""

from datetime import timedelta

import dagster as dg

from mkt_platform.defs.binance.assets import (
    COLUMN_DESCRIPTIONS,
    ORDER_BOOK_COLUMNS,
    KlinePullConfig,
    kline_day_tables,
    klines_pull,
    snapshot_order_books,
)
from mkt_platform.defs.binance.contract import (
    INTERVAL_MS,
    KLINE_LAKE_SCHEMA,
    ORDER_BOOK_LAKE_SCHEMA,
)
from mkt_platform.defs.binance.schedules import build_gap_repair_schedule
from mkt_platform.lib.datasets import (
    HOURLY_REFRESH,
    Freshness,
    RawDataset,
    Refresh,
    snapshot_schedule,
)

#: Every 5 minutes, as the replaced pipeline pulled Binance: the 1m klines, which no mart reads,
#: so a tick starts no dbt run. The 1h klines, which the session marts read, change only when
#: an hour closes (only closed klines are kept): they are pulled by the hourly refresh at :02,
#: which sees each new hour 3 minutes sooner than the 5-minute tick at :05 did, and no longer
#: rebuilds the same sessions 11 times an hour.
KLINES_REFRESH = Refresh(
    "binance_klines_refresh_schedule",
    "*/5 * * * *",
    "Every 5 minutes (as the replaced pipeline did)",
)


def _klines(interval: str, gap_repair: bool, refresh: Refresh) -> RawDataset:
    return RawDataset(
        venue="binance",
        dataset=f"klines_{interval}",
        description=(
            f"Binance spot {interval} klines (GET /api/v3/klines) of the configured "
            "instruments, one Parquet file per UTC day. Prices in quote currency and volumes "
            "as DECIMAL(38,8); open and close times as UTC timestamps. Today's partition is "
            "partial and is pulled again until the day has closed. The metadata lists every "
            "missing candle range per symbol; a gap-repair run re-pulls exactly those ranges, "
            "and a range the exchange itself has no candles for (a trading halt) is kept as a "
            "known gap."
        ),
        resource="binance",
        compute=klines_pull(interval),
        config=KlinePullConfig,
        schema=KLINE_LAKE_SCHEMA,
        columns=COLUMN_DESCRIPTIONS,
        quality="candles",
        freshness=Freshness(
            tolerance=timedelta(minutes=15),
            interval=timedelta(milliseconds=INTERVAL_MS[interval]),
            newest_field="last_open_time",
        ),
        late_data=lambda client, keys, now: kline_day_tables(client, interval, keys, now),
        refresh=refresh,
        schedules=(lambda asset: [build_gap_repair_schedule(asset)]) if gap_repair else None,
    )


KLINES_1H = _klines("1h", gap_repair=False, refresh=HOURLY_REFRESH)
KLINES_1M = _klines("1m", gap_repair=True, refresh=KLINES_REFRESH)

ORDER_BOOK = RawDataset(
    venue="binance",
    dataset="order_book",
    description=(
        "Snapshots of the Binance spot order books (GET /api/v3/depth) of the instruments "
        "marked order_book: true, MKT_BINANCE_ORDER_BOOK_LEVELS levels a side (100 by "
        "default): one row per snapshot, symbol, side and level, prices in quote currency and "
        "quantities in base currency as DECIMAL(38,8). Binance keeps no history of its books, "
        "so each run appends one snapshot (stamped snapshot_time) to today's UTC partition; "
        "a past day can never be back-filled, and the run refuses to invent one. The mart "
        "order_book_depth gives each snapshot's spread and the depth near the mid."
    ),
    resource="binance",
    compute=snapshot_order_books,
    schema=ORDER_BOOK_LAKE_SCHEMA,
    columns=ORDER_BOOK_COLUMNS,
    schedules=snapshot_schedule(
        "binance_order_book_schedule",
        "binance_order_book_snapshot",
        "*/5 * * * *",
        "Every 5 minutes, snapshot the Binance spot order books of the order_book instruments "
        "into today's partition (as the replaced pipeline did). A snapshot not taken is lost.",
    ),
    # Dagster's own freshness policy: materialized within the last 15 minutes (3 ticks).
    freshness_policy=dg.FreshnessPolicy.time_window(
        fail_window=timedelta(minutes=30), warn_window=timedelta(minutes=15)
    ),
    snapshot=True,
)

DATASETS = (KLINES_1H, KLINES_1M, ORDER_BOOK)
