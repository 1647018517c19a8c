"""Polygon's raw datasets on the NYSE trading calendar: SPY's and VIX's minute bars, the SPY
options near the money at the open, their minute bars, and SPY's news.

Each is declared once here; the asset and its checks derive from the declaration (see
:mod:`mkt_platform.lib.datasets`).
"""

from datetime import timedelta

from mkt_platform.defs.polygon.assets import (
    AGGS_COLUMNS,
    CONTRACTS_COLUMNS,
    NEWS_COLUMNS,
    OPTION_AGGS_COLUMNS,
    pull_news,
    pull_spy_aggs_1m,
    pull_spy_options_aggs_1m,
    pull_spy_options_contracts,
    pull_vix_aggs_1m,
)
from mkt_platform.defs.polygon.contract import (
    AGGS_LAKE_SCHEMA,
    NEWS_LAKE_SCHEMA,
    OPTIONS_CONTRACTS_LAKE_SCHEMA,
)
from mkt_platform.lib.datasets import Freshness, RawDataset
from mkt_platform.lib.equity_calendar import trading_days_partitions_def

#: The minute-bar datasets: each trading day pulled by 22:15 New York time (the equity
#: schedule runs at 20:15, after the extended hours), judged on partitions only (the newest
#: bar is old every night and weekend).
BARS_FRESHNESS = Freshness(timedelta(hours=2), timedelta(minutes=1), None)
#: News: a trading day's span runs to the next trading day's midnight, and the schedule pulls
#: it again the next trading day at 20:15.
NEWS_FRESHNESS = Freshness(timedelta(hours=24), timedelta(hours=1), None)

SPY_AGGS_1M = RawDataset(
    venue="polygon",
    dataset="spy_aggs_1m",
    description=(
        "SPY's one-minute bars from Polygon (GET /v2/aggs/ticker/SPY/range/1/minute/{day}/"
        "{day}, adjusted, next_url paging), one Parquet file per NYSE trading day, extended "
        "hours included (04:00-20:00 New York time): prices in USD and volume in shares as "
        "DECIMAL(38,8), exactly as sent, bar times in UTC. Partitioned by the NYSE trading "
        "days (exchange_calendars XNYS: no weekend or holiday partition). Needs "
        "POLYGON_API_KEY."
    ),
    resource="polygon",
    compute=pull_spy_aggs_1m,
    schema=AGGS_LAKE_SCHEMA,
    columns=AGGS_COLUMNS,
    quality="equity_bars",
    partitions=trading_days_partitions_def,
    freshness=BARS_FRESHNESS,
)

VIX_AGGS_1M = RawDataset(
    venue="polygon",
    dataset="vix_aggs_1m",
    description=(
        "The Cboe Volatility Index's one-minute values from Polygon (GET /v2/aggs/ticker/I:VIX/"
        "range/1/minute/{day}/{day}, next_url paging), one Parquet file per NYSE trading day: "
        "open, high, low and close in index points as DECIMAL(38,8), exactly as sent; an index "
        "has no volume, vwap or trade count (NULL). No recording exists: the replay serves "
        "SYNTHETIC values, and the files and materializations say so. Needs POLYGON_API_KEY."
    ),
    resource="polygon",
    compute=pull_vix_aggs_1m,
    schema=AGGS_LAKE_SCHEMA,
    columns=AGGS_COLUMNS,
    quality="equity_bars",
    partitions=trading_days_partitions_def,
    freshness=BARS_FRESHNESS,
)

SPY_OPTIONS_CONTRACTS = RawDataset(
    venue="polygon",
    dataset="spy_options_contracts",
    description=(
        "The SPY options tracked on each NYSE trading day, chosen at the open: the contracts "
        "listed that day (GET /v3/reference/options/contracts?underlying_ticker=SPY&as_of="
        "{day}, next_url paging) with strikes within MKT_POLYGON_OPTIONS_BAND_PCT (1 %) of "
        "SPY's open (the open of its first regular-session minute bar, from "
        "polygon_spy_aggs_1m) and expiring within MKT_POLYGON_OPTIONS_EXPIRY_DAYS (7) calendar "
        "days, at most MKT_POLYGON_OPTIONS_MAX_CONTRACTS (100), nearest the money first. Strike "
        "in USD as DECIMAL(38,8), expiration a New York date, with the open and each "
        "contract's moneyness at the open. Needs POLYGON_API_KEY."
    ),
    resource="polygon",
    compute=pull_spy_options_contracts,
    schema=OPTIONS_CONTRACTS_LAKE_SCHEMA,
    columns=CONTRACTS_COLUMNS,
    partitions=trading_days_partitions_def,
    deps=(SPY_AGGS_1M.key,),
)

SPY_OPTIONS_AGGS_1M = RawDataset(
    venue="polygon",
    dataset="spy_options_aggs_1m",
    description=(
        "One-minute bars of the SPY options tracked that day (polygon_spy_options_contracts), "
        "from GET /v2/aggs/ticker/{option}/range/1/minute/{day}/{day}, one Parquet file per "
        "NYSE trading day: premiums in USD per share and volume in contracts as DECIMAL(38,8), "
        "exactly as sent, bar times in UTC. A minute without a trade has no bar. Needs "
        "POLYGON_API_KEY."
    ),
    resource="polygon",
    compute=pull_spy_options_aggs_1m,
    schema=AGGS_LAKE_SCHEMA,
    columns=OPTION_AGGS_COLUMNS,
    quality="equity_bars",
    partitions=trading_days_partitions_def,
    deps=(SPY_OPTIONS_CONTRACTS.key,),
    freshness=BARS_FRESHNESS,
)

NEWS = RawDataset(
    venue="polygon",
    dataset="news",
    description=(
        "News on SPY from Polygon (GET /v2/reference/news?ticker=SPY, published_utc window, "
        "next_url paging), one Parquet file per NYSE trading day: the articles published from "
        "the day's New York midnight to the next trading day's (a weekend's news belongs to "
        "Friday), with publisher, tickers, and the sentiment (positive, neutral, negative) of "
        "Polygon's insights on SPY where it sends them. No recording of news with insights "
        "exists: the replay serves SYNTHETIC articles for SPY, and the files and "
        "materializations say so. Needs POLYGON_API_KEY."
    ),
    resource="polygon",
    compute=pull_news,
    schema=NEWS_LAKE_SCHEMA,
    columns=NEWS_COLUMNS,
    partitions=trading_days_partitions_def,
    freshness=NEWS_FRESHNESS,
)

DATASETS = (SPY_AGGS_1M, VIX_AGGS_1M, SPY_OPTIONS_CONTRACTS, SPY_OPTIONS_AGGS_1M, NEWS)
