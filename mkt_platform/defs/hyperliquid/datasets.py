"""Hyperliquid's raw datasets (``POST /info``): 1h and 1m candles, funding rates, and
snapshots of the asset contexts.

Each is declared once here; the asset, its checks, freshness, late-data re-pulls and
schedules derive from the declaration (see :mod:`mkt_platform.lib.datasets`).
"""

from datetime import timedelta

import dagster as dg

from mkt_platform.defs.hyperliquid.assets import (
    CANDLE_COLUMNS,
    FUNDING_COLUMNS,
    candle_day_tables,
    funding_day_tables,
    pull_candles_1h,
    pull_candles_1m,
    pull_funding_rates,
    snapshot_asset_contexts,
)
from mkt_platform.defs.hyperliquid.contract import CANDLE_LAKE_SCHEMA, FUNDING_LAKE_SCHEMA
from mkt_platform.lib.datasets import (
    HOURLY_REFRESH,
    Freshness,
    RawDataset,
)

HOURLY_FRESHNESS = Freshness(timedelta(hours=2), timedelta(hours=1), "last_open_time")


CANDLES_1H = RawDataset(
    venue="hyperliquid",
    dataset="candles_1h",
    description=(
        "Hyperliquid 1h candles (POST /info candleSnapshot) of the configured instruments (perp "
        "coins such as BTC, spot pairs as @index such as @107 = HYPE/USDC), one Parquet file "
        "per UTC day. Prices in quote currency (USDC) and base volumes as DECIMAL(38,8); "
        "open and close times as UTC timestamps; candles not closed at pull time are left out."
    ),
    resource="hyperliquid",
    compute=pull_candles_1h,
    schema=CANDLE_LAKE_SCHEMA,
    columns=CANDLE_COLUMNS,
    quality="candles",
    freshness=HOURLY_FRESHNESS,
    late_data=candle_day_tables,
    refresh=HOURLY_REFRESH,
)

CANDLES_1M = RawDataset(
    venue="hyperliquid",
    dataset="candles_1m",
    description=(
        "Hyperliquid 1m candles (POST /info candleSnapshot, interval 1m) of the perps that "
        "list 1m in the universe, one Parquet file per UTC day, in the units of the 1h "
        "candles. The REST side of the one-minute candles: the capture service streams them "
        "live (hyperliquid_candles_1m_stream) and capture_gap_sensor pulls the days whose "
        "closed hours lost minutes; the mart candles_1m merges both. Hyperliquid serves only "
        "the most recent 5,000 candles, so a 1m day older than about 3.5 days cannot be "
        "pulled whole: its missing candles are reported by the expected_candles check."
    ),
    resource="hyperliquid",
    compute=pull_candles_1m,
    schema=CANDLE_LAKE_SCHEMA,
    columns=CANDLE_COLUMNS,
    quality="candles",
)

FUNDING_RATES = RawDataset(
    venue="hyperliquid",
    dataset="funding_rates",
    description=(
        "Hyperliquid funding rates of the configured perps (POST /info fundingHistory, "
        "paginated by time), one Parquet file per UTC day of funding time. funding_rate is "
        "the rate paid at that funding time for the interval since the previous one: every "
        "8 hours until 2023-06-08, every hour since (staging derives the interval). "
        "Rates and premiums as DECIMAL(38,12), exactly as sent."
    ),
    resource="hyperliquid",
    compute=pull_funding_rates,
    schema=FUNDING_LAKE_SCHEMA,
    columns=FUNDING_COLUMNS,
    quality="funding",
    freshness=Freshness(timedelta(hours=2), timedelta(hours=1), "last_funding_time"),
    late_data=funding_day_tables,
    refresh=HOURLY_REFRESH,
)

ASSET_CONTEXTS = RawDataset(
    venue="hyperliquid",
    dataset="asset_contexts",
    description=(
        "Snapshots of Hyperliquid's asset contexts (POST /info metaAndAssetCtxs) for the "
        "configured perps: open interest (contracts), mark, oracle and mid price (USDC), "
        "funding, premium, 24h volumes. Hyperliquid keeps no history of these, so each run "
        "appends one snapshot (stamped snapshot_time) to today's UTC partition; a past day "
        "can never be back-filled, and the run refuses to invent one."
    ),
    resource="hyperliquid",
    compute=snapshot_asset_contexts,
    # Taken by the hourly refresh at :02, in its run (Hyperliquid keeps no history of them).
    refresh=HOURLY_REFRESH,
    # Hourly snapshots of the present: Dagster's own freshness policy says it exactly (the
    # partition-aware rule of the other datasets has nothing to add for a snapshot).
    freshness_policy=dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=2), warn_window=timedelta(hours=1, minutes=15)
    ),
    snapshot=True,
)

DATASETS = (CANDLES_1H, CANDLES_1M, FUNDING_RATES, ASSET_CONTEXTS)
