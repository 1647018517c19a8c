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


#: One price level of an order book (``GET /api/v3/depth``'s ``bids`` and ``asks``):
#: ``["price", "quantity"]``, both strings with 8 decimals.
BOOK_LEVEL_CONTRACT = PositionalContract(
    dataset="binance_order_book",
    fields=(
        ContractField("price", WireType.NUMERIC_STRING, PRICE, "Level price (quote currency)."),
        ContractField(
            "quantity", WireType.NUMERIC_STRING, PRICE, "Quantity at the level (base currency)."
        ),
    ),
)

#: Storage schema of the raw order-book Parquet files: one row per side and level of one
#: snapshot of one symbol (level 1 is the best bid or ask).
ORDER_BOOK_LAKE_SCHEMA = pa.schema(
    [
        pa.field("snapshot_time", UTC_MS, nullable=False),
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("last_update_id", pa.int64(), nullable=False),
        pa.field("side", pa.string(), nullable=False),
        pa.field("level", pa.int32(), nullable=False),
        *BOOK_LEVEL_CONTRACT.arrow_schema(),
    ],
    metadata={"contract": BOOK_LEVEL_CONTRACT.dataset},
)


def order_book_table(payload: object, symbol: str, snapshot_ms: int, source: str) -> pa.Table:
    """One ``GET /api/v3/depth`` answer as lake rows (:data:`ORDER_BOOK_LAKE_SCHEMA`): the
    bids from the best (highest) down, then the asks from the best (lowest) up.

    The answer is ``{"lastUpdateId": int, "bids": [["price", "qty"], ...], "asks": [...]}``.

    Raises:
        ContractViolation: a key missing or mistyped, a level not ``[price, quantity]`` of
            numeric strings.
        MalformedResponse: bids not strictly descending or asks not strictly ascending in
            price, or the book crossed (best bid at or above best ask): no exchange snapshot
            looks like that.
    """
    from mkt_platform.lib.contracts import ContractViolation, MalformedResponse

    dataset = BOOK_LEVEL_CONTRACT.dataset
    if not isinstance(payload, dict):
        raise ContractViolation(dataset, source, None, "a JSON object", type(payload).__name__)
    update_id = payload.get("lastUpdateId")
    if type(update_id) is not int:
        raise ContractViolation(dataset, source, "lastUpdateId", "an integer", f"{update_id!r}")
    sides = []
    for side, key, descending in (("bid", "bids", True), ("ask", "asks", False)):
        levels = BOOK_LEVEL_CONTRACT.to_table(payload.get(key), f"{source} {key}")
        prices = levels["price"].to_pylist()
        for index in range(1, len(prices)):
            ordered = (
                prices[index] < prices[index - 1]
                if descending
                else prices[index] > prices[index - 1]
            )
            if not ordered:
                raise MalformedResponse(
                    dataset,
                    source,
                    f"{key}[{index}]",
                    f"{key} strictly {'descending' if descending else 'ascending'} in price",
                    f"{prices[index]} after {prices[index - 1]}",
                )
        n = levels.num_rows
        sides.append(
            pa.table(
                {
                    "snapshot_time": pa.array([snapshot_ms] * n, UTC_MS),
                    "symbol": pa.array([symbol] * n, pa.string()),
                    "last_update_id": pa.array([update_id] * n, pa.int64()),
                    "side": pa.array([side] * n, pa.string()),
                    "level": pa.array(range(1, n + 1), pa.int32()),
                    "price": levels["price"],
                    "quantity": levels["quantity"],
                },
                schema=ORDER_BOOK_LAKE_SCHEMA,
            )
        )
    bids, asks = sides
    if bids.num_rows and asks.num_rows and bids["price"][0].as_py() >= asks["price"][0].as_py():
        raise MalformedResponse(
            dataset,
            source,
            "bids[0]",
            "best bid below best ask",
            f"bid {bids['price'][0].as_py()} >= ask {asks['price'][0].as_py()} (a crossed book)",
        )
    return pa.concat_tables(sides)
