"""Contract of Binance's spot kline payload (``GET /api/v3/klines``).

Binance answers each kline as a 12-element JSON array; the order is the contract
(https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-endpoints).
Times are integer UTC milliseconds; prices (quote currency) and volumes are strings with 8
decimal places, stored as DECIMAL(38,8) so that sums over sessions are exact.

Binance always sends all 12 fields. The fields after ``volume`` are declared nullable only
because the offline replay serves recordings that lack them (freqtrade's 1m files carry open
time and OHLCV only): the replay sends ``null`` rather than inventing values, and the lake
stores NULL. A missing position or a wrong type still breaks the contract.
"""

from __future__ import annotations

import pyarrow as pa

from mkt_platform.lib.contracts import (
    PRICE,
    UTC_MS,
    ContractField,
    PositionalContract,
    WireType,
)

KLINE_CONTRACT = PositionalContract(
    dataset="binance_klines",
    fields=(
        ContractField("open_time", WireType.INTEGER, UTC_MS, "Candle open time (UTC)."),
        ContractField("open", WireType.NUMERIC_STRING, PRICE, "First trade price (quote)."),
        ContractField("high", WireType.NUMERIC_STRING, PRICE, "Highest trade price (quote)."),
        ContractField("low", WireType.NUMERIC_STRING, PRICE, "Lowest trade price (quote)."),
        ContractField("close", WireType.NUMERIC_STRING, PRICE, "Last trade price (quote)."),
        ContractField("volume", WireType.NUMERIC_STRING, PRICE, "Traded volume (base)."),
        ContractField(
            "close_time",
            WireType.INTEGER,
            UTC_MS,
            "Candle close time (UTC), inclusive.",
            nullable=True,
        ),
        ContractField(
            "quote_volume",
            WireType.NUMERIC_STRING,
            PRICE,
            "Traded volume (quote).",
            nullable=True,
        ),
        ContractField("trades", WireType.INTEGER, pa.int64(), "Number of trades.", nullable=True),
        ContractField(
            "taker_buy_base_volume",
            WireType.NUMERIC_STRING,
            PRICE,
            "Taker buy volume (base).",
            nullable=True,
        ),
        ContractField(
            "taker_buy_quote_volume",
            WireType.NUMERIC_STRING,
            PRICE,
            "Taker buy volume (quote).",
            nullable=True,
        ),
        ContractField(
            "ignore",
            WireType.NUMERIC_STRING,
            pa.string(),
            "Unused by Binance ('0').",
            nullable=True,
        ),
    ),
)

#: Storage schema of the raw kline Parquet files: the symbol, then the 12 contract fields.
KLINE_LAKE_SCHEMA = pa.schema(
    [pa.field("symbol", pa.string(), nullable=False), *KLINE_CONTRACT.arrow_schema()],
    metadata={"contract": KLINE_CONTRACT.dataset},
)

#: Binance interval notation to milliseconds, for the intervals the platform collects.
INTERVAL_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000, "1d": 86_400_000}
