"""Deribit's raw datasets: option trades
(``GET /api/v2/public/get_last_trades_by_currency_and_time``, kind=option) and the
volatility index DVOL (``GET /api/v2/public/get_volatility_index_data``).

Each is declared once here; the asset, its checks, freshness, late-data re-pulls and
schedules derive from the declaration (see :mod:`mkt_platform.lib.datasets`).
"""

from datetime import timedelta

from mkt_platform.defs.deribit.assets import (
    COLUMN_DESCRIPTIONS,
    VOLATILITY_INDEX_COLUMNS,
    option_trade_day_tables,
    pull_option_trades,
    pull_volatility_index,
    volatility_index_day_tables,
)
from mkt_platform.defs.deribit.contract import (
    OPTION_TRADE_LAKE_SCHEMA,
    VOLATILITY_INDEX_LAKE_SCHEMA,
)
from mkt_platform.lib.datasets import HOURLY_REFRESH, Freshness, RawDataset

OPTION_TRADES = RawDataset(
    venue="deribit",
    dataset="option_trades",
    description=(
        "Deribit option trades (GET /api/v2/public/get_last_trades_by_currency_and_time, "
        "kind=option) of the configured currencies, one Parquet file per UTC day, streamed page "
        "by page (memory does not grow with the day) and deduplicated on trade_id. Prices in "
        "BTC, amounts in contracts, index price in USD, iv in percent; expiry, strike and "
        "option type parsed from the instrument name. A trade whose name does not parse is "
        "left out, counted and listed in the metadata. A day with no trades yet is an empty "
        "file with a note."
    ),
    resource="deribit",
    compute=pull_option_trades,
    schema=OPTION_TRADE_LAKE_SCHEMA,
    columns=COLUMN_DESCRIPTIONS,
    quality="option_trades",
    freshness=Freshness(timedelta(hours=2), timedelta(hours=1), "last_trade_time"),
    late_data=option_trade_day_tables,
    refresh=HOURLY_REFRESH,
)

VOLATILITY_INDEX = RawDataset(
    venue="deribit",
    dataset="volatility_index",
    description=(
        "Deribit's volatility index DVOL (GET /api/v2/public/get_volatility_index_data, "
        "resolution 1D, and 3600 for the currencies whose instruments line lists it; paged by "
        "continuation), the market's 30-day implied volatility, for the configured option "
        "currencies: one daily candle per currency and UTC day (and its 24 hourly candles "
        "where collected), open, high, low and close in percent as DECIMAL(38,8), exactly as "
        "sent. Only closed candles are stored. A day's open need not equal the previous close "
        "(Deribit's candles do not chain)."
    ),
    resource="deribit",
    compute=pull_volatility_index,
    schema=VOLATILITY_INDEX_LAKE_SCHEMA,
    columns=VOLATILITY_INDEX_COLUMNS,
    quality="index_candles",
    freshness=Freshness(timedelta(hours=2), timedelta(days=1), "last_open_time"),
    late_data=volatility_index_day_tables,
    refresh=HOURLY_REFRESH,
)

DATASETS = (OPTION_TRADES, VOLATILITY_INDEX)
