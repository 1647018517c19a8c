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
    ObjectContract,
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


def _object_field(
    name: str, key: str, wire: WireType, arrow_type: pa.DataType, description: str
) -> ContractField:
    return ContractField(name, wire, arrow_type, description, key=key)


_NUM, _INT, _STR = WireType.NUMERIC_STRING, WireType.INTEGER, WireType.STRING

#: ``GET /api/v3/ticker/24hr?symbol=...`` (type FULL): the rolling 24-hour statistics of
#: one symbol, a JSON object; prices in quote currency, volumes in base (``volume``) and
#: quote (``quoteVolume``) currency, as strings with 8 decimals.
TICKER_24H_CONTRACT = ObjectContract(
    dataset="binance_ticker_24h",
    fields=(
        _object_field("symbol", "symbol", _STR, pa.string(), "Symbol, e.g. BTCUSDT."),
        _object_field(
            "price_change", "priceChange", _NUM, PRICE, "last_price - open_price (quote)."
        ),
        _object_field(
            "price_change_percent",
            "priceChangePercent",
            _NUM,
            PRICE,
            "price_change / open_price * 100, as Binance rounds it (3 decimals).",
        ),
        _object_field(
            "weighted_avg_price",
            "weightedAvgPrice",
            _NUM,
            PRICE,
            "Volume-weighted average price of the 24 hours (quote).",
        ),
        _object_field(
            "prev_close_price", "prevClosePrice", _NUM, PRICE, "Close before the window (quote)."
        ),
        _object_field("last_price", "lastPrice", _NUM, PRICE, "Last trade price (quote)."),
        _object_field("last_quantity", "lastQty", _NUM, PRICE, "Last trade quantity (base)."),
        _object_field("bid_price", "bidPrice", _NUM, PRICE, "Best bid price (quote)."),
        _object_field("bid_quantity", "bidQty", _NUM, PRICE, "Quantity at the best bid (base)."),
        _object_field("ask_price", "askPrice", _NUM, PRICE, "Best ask price (quote)."),
        _object_field("ask_quantity", "askQty", _NUM, PRICE, "Quantity at the best ask (base)."),
        _object_field("open_price", "openPrice", _NUM, PRICE, "First price of the window (quote)."),
        _object_field("high_price", "highPrice", _NUM, PRICE, "Highest price of the window."),
        _object_field("low_price", "lowPrice", _NUM, PRICE, "Lowest price of the window."),
        _object_field("volume", "volume", _NUM, PRICE, "Traded volume (base currency)."),
        _object_field(
            "quote_volume", "quoteVolume", _NUM, PRICE, "Traded volume (quote currency)."
        ),
        _object_field("open_time", "openTime", _INT, UTC_MS, "Start of the 24-hour window."),
        _object_field("close_time", "closeTime", _INT, UTC_MS, "End of the 24-hour window."),
        _object_field("first_trade_id", "firstId", _INT, pa.int64(), "First trade id of it."),
        _object_field("last_trade_id", "lastId", _INT, pa.int64(), "Last trade id of it."),
        _object_field("trades", "count", _INT, pa.int64(), "Number of trades in the window."),
    ),
)

#: Storage schema of the raw 24h-ticker Parquet files: one row per snapshot and symbol.
TICKER_24H_LAKE_SCHEMA = pa.schema(
    [pa.field("snapshot_time", UTC_MS, nullable=False), *TICKER_24H_CONTRACT.arrow_schema()],
    metadata={"contract": TICKER_24H_CONTRACT.dataset},
)

#: ``GET /api/v3/trades?symbol=...&limit=...``: the most recent trades of one symbol, oldest
#: first, a JSON array of objects.
RECENT_TRADE_CONTRACT = ObjectContract(
    dataset="binance_recent_trades",
    record_name="trade",
    record_id="id",
    fields=(
        _object_field("trade_id", "id", _INT, pa.int64(), "Binance's trade id (per symbol)."),
        _object_field("price", "price", _NUM, PRICE, "Trade price (quote currency)."),
        _object_field("quantity", "qty", _NUM, PRICE, "Trade quantity (base currency)."),
        _object_field(
            "quote_quantity",
            "quoteQty",
            _NUM,
            pa.decimal128(38, 16),
            "price * quantity (quote currency), as Binance sends it.",
        ),
        _object_field("trade_time", "time", _INT, UTC_MS, "Trade time (UTC)."),
        _object_field(
            "is_buyer_maker",
            "isBuyerMaker",
            WireType.BOOLEAN,
            pa.bool_(),
            "The buyer was the maker: the taker sold (the trade hit the bid).",
        ),
        _object_field(
            "is_best_match", "isBestMatch", WireType.BOOLEAN, pa.bool_(), "Best price match."
        ),
    ),
)

#: Storage schema of the raw recent-trades Parquet files: one row per snapshot, symbol and
#: trade (consecutive snapshots overlap: staging keeps each trade once).
RECENT_TRADES_LAKE_SCHEMA = pa.schema(
    [
        pa.field("snapshot_time", UTC_MS, nullable=False),
        pa.field("symbol", pa.string(), nullable=False),
        *RECENT_TRADE_CONTRACT.arrow_schema(),
    ],
    metadata={"contract": RECENT_TRADE_CONTRACT.dataset},
)
