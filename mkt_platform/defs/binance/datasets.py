"""Binance's raw datasets: spot klines, 1h and 1m (``GET /api/v3/klines``), and 5-minute
snapshots of the spot order books (``GET /api/v3/depth``), 24-hour tickers
(``GET /api/v3/ticker/24hr``) and recent trades (``GET /api/v3/trades``).

Each is declared once here; the asset, its checks, freshness, late-data re-pulls, refresh and
gap-repair schedules derive from the declaration (see :mod:`mkt_platform.lib.datasets`).
"""

from datetime import timedelta

import dagster as dg

from mkt_platform.defs.binance.assets import (
    COLUMN_DESCRIPTIONS,
    ORDER_BOOK_COLUMNS,
    RECENT_TRADES_COLUMNS,
    TICKER_24H_COLUMNS,
    KlinePullConfig,
    kline_day_tables,
    klines_pull,
    snapshot_order_books,
    snapshot_recent_trades,
    snapshot_tickers,
)
from mkt_platform.defs.binance.contract import (
    INTERVAL_MS,
    KLINE_LAKE_SCHEMA,
    ORDER_BOOK_LAKE_SCHEMA,
    RECENT_TRADES_LAKE_SCHEMA,
    TICKER_24H_LAKE_SCHEMA,
)
from mkt_platform.defs.binance.schedules import build_gap_repair_schedule
from mkt_platform.lib.datasets import (
    HOURLY_REFRESH,
    Freshness,
    RawDataset,
    Refresh,
)

#: Every 5 minutes, as the replaced pipeline pulled Binance, in one run: the 1m klines, which
#: no mart reads, and the spot snapshots (order books, 24h tickers, recent trades), which
#: order_book_depth reads. The 1h klines, which the session marts read, change only when an
#: hour closes (only closed klines are kept): they are pulled by the hourly refresh at :02,
#: which sees each new hour 3 minutes sooner than the 5-minute tick at :05 did, and no longer
#: rebuilds the same sessions 11 times an hour.
FIVE_MINUTE_REFRESH = Refresh(
    "binance_five_minute_refresh_schedule",
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
KLINES_1M = _klines("1m", gap_repair=True, refresh=FIVE_MINUTE_REFRESH)

#: Dagster's own freshness policy for the 5-minute snapshots: materialized within the last 15
#: minutes (3 ticks) warns, 30 fails.
SNAPSHOT_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(minutes=30), warn_window=timedelta(minutes=15)
)

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
    quality="order_book",
    refresh=FIVE_MINUTE_REFRESH,
    freshness_policy=SNAPSHOT_FRESHNESS,
    snapshot=True,
)

TICKER_24H = RawDataset(
    venue="binance",
    dataset="ticker_24h",
    description=(
        "Snapshots of the Binance spot 24-hour statistics (GET /api/v3/ticker/24hr) of the "
        "instruments marked order_book: true: one row per snapshot and symbol with the "
        "rolling window's open, high, low and last price, price change, weighted average "
        "price, best bid and ask (quote currency, DECIMAL(38,8)), base and quote volumes, "
        "trade ids and count. Each run appends one snapshot (stamped snapshot_time) to "
        "today's UTC partition; a past day can never be back-filled."
    ),
    resource="binance",
    compute=snapshot_tickers,
    schema=TICKER_24H_LAKE_SCHEMA,
    columns=TICKER_24H_COLUMNS,
    quality="ticker_24h",
    refresh=FIVE_MINUTE_REFRESH,
    freshness_policy=SNAPSHOT_FRESHNESS,
    snapshot=True,
)

RECENT_TRADES = RawDataset(
    venue="binance",
    dataset="recent_trades",
    description=(
        "Snapshots of the Binance spot recent trades (GET /api/v3/trades, the last "
        "MKT_BINANCE_RECENT_TRADES of each symbol, 500 by default) of the instruments marked "
        "order_book: true: one row per snapshot, symbol and trade, price in quote and "
        "quantity in base currency (DECIMAL(38,8)), the buyer-maker flag. Consecutive "
        "snapshots overlap (a trade appears in each that saw it); each run appends one "
        "snapshot to today's UTC partition; a past day can never be back-filled."
    ),
    resource="binance",
    compute=snapshot_recent_trades,
    schema=RECENT_TRADES_LAKE_SCHEMA,
    columns=RECENT_TRADES_COLUMNS,
    quality="recent_trades",
    refresh=FIVE_MINUTE_REFRESH,
    freshness_policy=SNAPSHOT_FRESHNESS,
    snapshot=True,
)

DATASETS = (KLINES_1H, KLINES_1M, ORDER_BOOK, TICKER_24H, RECENT_TRADES)
