"""Contract of Deribit's public option trades, and the lake schema they are stored in.

Source: ``GET /api/v2/public/get_last_trades_by_currency_and_time`` (and the same path on
``history.deribit.com``), whose ``result.trades`` is a list of JSON objects keyed by name.
See https://docs.deribit.com/api-reference/market-data/public-get_last_trades_by_currency_and_time

Numbers must be decoded exactly: parse the body with :func:`decode_json` (``parse_float=
Decimal``), never with plain ``json.loads``, whose floats would lose digits. A price, amount
or index price with more than 8 decimals is a :class:`ContractViolation`, never rounded.

Validation is two-step so the client can deduplicate in between:

1. :func:`check_trades` checks the page as a whole against :data:`TRADE_CONTRACT` (an
   :class:`~mkt_platform.lib.contracts.ObjectContract`, the one contract framework of every
   venue): every required field present, of its JSON type and in its range. Any failure is
   a ``ContractViolation`` of the page. Unknown
   extra fields are not a failure; their names are returned (Deribit added a field).
2. :func:`trades_to_table` converts checked trades to :data:`OPTION_TRADE_LAKE_SCHEMA`.
   A trade whose ``instrument_name`` is not an option name is *not* a contract violation:
   it is left out of the table and returned as a :class:`RejectedTrade`, so the caller can
   count and report it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

import pyarrow as pa

from mkt_platform.defs.deribit.instruments import InstrumentNameError, parse_instrument_name
from mkt_platform.lib.contracts import (
    PRICE,
    UTC_MS,
    ContractField,
    ObjectContract,
    PositionalContract,
    WireType,
)

DATASET = "deribit_option_trades"

_INT64_MAX = 2**63 - 1
DIRECTIONS = ("buy", "sell")
TICK_DIRECTIONS = range(4)
LIQUIDATIONS = ("M", "T", "MT")


def _non_negative(value: int | Decimal) -> tuple[str, str] | None:
    return ("a non-negative number", str(value)) if value < 0 else None


def _int64(value: int) -> tuple[str, str] | None:
    return None if 0 <= value <= _INT64_MAX else ("an integer in 0..2^63-1", repr(value))


def _one_of(allowed: Sequence[Any], expected: str) -> Any:
    def check(value: Any) -> tuple[str, str] | None:
        return None if value in allowed else (expected, repr(value))

    return check


def _non_empty(value: str) -> tuple[str, str] | None:
    return None if value else ("a non-empty string", repr(value))


_INT, _NUMBER, _STR = WireType.INTEGER, WireType.NUMBER, WireType.STRING

#: The fields of a trade the platform reads, in Deribit's order. ``trade_seq``,
#: ``mark_price`` and ``iv`` may be absent or null (the QuantLet recording has no
#: ``mark_price``, the Amberdata one no ``trade_seq`` and no Deribit mark), and so are
#: ``block_trade_id`` and ``liquidation``, which Deribit sends only for block-trade legs and
#: liquidations; the rest must be present and non-null. Prices, amounts and the index
#: price must fit DECIMAL(38, 8) exactly: more than 8 decimals is a violation, never rounded.
TRADE_FIELDS: tuple[ContractField, ...] = (
    ContractField(
        "trade_seq",
        _INT,
        pa.int64(),
        "Sequence number of the trade in its instrument; absent in the Amberdata recording.",
        check=_int64,
        required=False,
    ),
    ContractField(
        "trade_id",
        _STR,
        pa.string(),
        "Unique (per currency) trade id; numeric for BTC.",
        check=_non_empty,
    ),
    ContractField(
        "timestamp", _INT, UTC_MS, "Trade time, UTC milliseconds since the epoch.", check=_int64
    ),
    ContractField(
        "tick_direction",
        _INT,
        pa.int32(),
        "0 plus tick, 1 zero-plus, 2 minus, 3 zero-minus.",
        check=_one_of(TICK_DIRECTIONS, "0, 1, 2 or 3"),
    ),
    ContractField(
        "price",
        _NUMBER,
        PRICE,
        "Trade price, BTC per contract (inverse option).",
        check=_non_negative,
    ),
    ContractField(
        "mark_price", _NUMBER, pa.float64(), "Mark price at the trade, BTC.", required=False
    ),
    ContractField(
        "iv",
        _NUMBER,
        pa.float64(),
        "Implied volatility of the trade price, percent.",
        required=False,
    ),
    ContractField(
        "instrument_name",
        _STR,
        pa.string(),
        "Option name, e.g. BTC-1JAN22-47000-C.",
        check=_non_empty,
    ),
    ContractField(
        "index_price",
        _NUMBER,
        PRICE,
        "Underlying index at the trade, USD.",
        check=_non_negative,
    ),
    ContractField(
        "direction",
        _STR,
        pa.string(),
        "Taker side: 'buy' or 'sell'.",
        check=_one_of(DIRECTIONS, "'buy' or 'sell'"),
    ),
    ContractField(
        "amount",
        _NUMBER,
        PRICE,
        "Trade size, contracts (1 contract = 1 BTC).",
        check=_non_negative,
    ),
    ContractField(
        "block_trade_id",
        _STR,
        pa.string(),
        "Id of the block trade this trade is a leg of; absent for on-screen trades.",
        check=_non_empty,
        required=False,
    ),
    ContractField(
        "liquidation",
        _STR,
        pa.string(),
        "Who was liquidated: 'M' maker, 'T' taker, 'MT' both; absent when nobody was.",
        check=_one_of(LIQUIDATIONS, "'M', 'T' or 'MT'"),
        required=False,
    ),
)

#: Fields Deribit documents for public trades that the lake does not store. They are
#: expected, so they are not reported as added fields.
KNOWN_UNSTORED_FIELDS = frozenset(
    {
        "contracts",
        "block_trade_leg_count",
        "block_rfq_id",
        "combo_id",
        "combo_trade_id",
    }
)

#: The contract of one trade object of ``result.trades``.
TRADE_CONTRACT = ObjectContract(
    dataset=DATASET,
    fields=TRADE_FIELDS,
    record_name="trade",
    record_id="trade_id",
    ignored_keys=KNOWN_UNSTORED_FIELDS,
)

#: Storage schema of the raw option-trade Parquet files, in this column order.
OPTION_TRADE_LAKE_SCHEMA = pa.schema(
    [
        pa.field("trade_id", pa.string(), nullable=False),
        pa.field("trade_seq", pa.int64(), nullable=True),
        pa.field("timestamp", UTC_MS, nullable=False),
        pa.field("instrument_name", pa.string(), nullable=False),
        pa.field("direction", pa.string(), nullable=False),
        pa.field("price", PRICE, nullable=False),  # BTC
        pa.field("amount", PRICE, nullable=False),  # contracts
        pa.field("iv", pa.float64(), nullable=True),  # percent
        pa.field("mark_price", pa.float64(), nullable=True),  # BTC
        pa.field("index_price", PRICE, nullable=False),  # USD
        pa.field("tick_direction", pa.int32(), nullable=False),
        pa.field("expiry", UTC_MS, nullable=False),  # 08:00 UTC on the expiry date
        pa.field("strike", PRICE, nullable=False),  # USD
        pa.field("option_type", pa.string(), nullable=False),  # "C" / "P"
        pa.field("block_trade_id", pa.string(), nullable=True),  # null: on-screen trade
        pa.field("liquidation", pa.string(), nullable=True),  # "M" / "T" / "MT" / null
    ],
    metadata={"contract": DATASET},
)


class RejectedTrade(NamedTuple):
    """A trade left out of the lake because its instrument is not a parseable option."""

    trade_id: str
    instrument_name: str
    reason: str


def decode_json(body: bytes | str) -> Any:
    """Decode a Deribit response body with exact numbers (``Decimal`` for every non-integer).

    Raises:
        ValueError: the body is not JSON, or contains ``NaN``/``Infinity`` (not JSON).
    """
    return json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def check_trades(trades: Any, source: str) -> list[str]:
    """Check a decoded page of trades (``result.trades``) against :data:`TRADE_CONTRACT`.

    Args:
        trades: the decoded list of trade objects (decode with :func:`decode_json`).
        source: the request, for error messages (endpoint, currency, time range).

    Returns:
        The sorted names of fields that are neither in :data:`TRADE_FIELDS` nor in
        :data:`KNOWN_UNSTORED_FIELDS` (new in the API: a warning, not a failure).

    Raises:
        ContractViolation: ``trades`` is not a list of objects; a required field is missing
            or null; a field has the wrong JSON type (a number sent as a string, a float
            decoded without ``Decimal``); a price, amount or index price is negative, has
            more than 8 decimals or does not fit DECIMAL(38, 8); ``direction`` is not
            buy/sell; ``tick_direction`` is not 0-3; ``trade_id`` is empty.
    """
    return list(TRADE_CONTRACT.validate(trades, source))


def trades_to_table(
    trades: Sequence[Mapping[str, Any]],
) -> tuple[pa.Table, list[RejectedTrade]]:
    """Convert trades that passed :func:`check_trades` to :data:`OPTION_TRADE_LAKE_SCHEMA`.

    Returns:
        The table (one row per trade with an option instrument name, in input order) and the
        trades left out because their ``instrument_name`` does not parse, with the reason.
    """
    rows: list[Mapping[str, Any]] = []
    instruments = []
    rejected: list[RejectedTrade] = []
    parsed: dict[str, Any] = {}
    for trade in trades:
        name = trade["instrument_name"]
        instrument = parsed.get(name)
        if instrument is None:
            try:
                instrument = parse_instrument_name(name)
            except InstrumentNameError as exc:
                rejected.append(RejectedTrade(trade["trade_id"], name, exc.reason))
                continue
            parsed[name] = instrument
        rows.append(trade)
        instruments.append(instrument)
    return _build_table(rows, instruments), rejected


def _build_table(rows: Sequence[Mapping[str, Any]], instruments: Sequence[Any]) -> pa.Table:
    def column(name: str) -> list[Any]:
        return [row[name] for row in rows]

    def optional(name: str) -> list[Any]:
        return [row.get(name) for row in rows]

    def floats(name: str) -> list[float | None]:
        return [None if row.get(name) is None else float(row[name]) for row in rows]

    def decimals(values: Iterable[int | Decimal]) -> list[Decimal]:
        return [Decimal(v) for v in values]

    arrays = {
        "trade_id": pa.array(column("trade_id"), pa.string()),
        "trade_seq": pa.array(optional("trade_seq"), pa.int64()),
        "timestamp": pa.array(column("timestamp"), pa.int64()).cast(UTC_MS),
        "instrument_name": pa.array(column("instrument_name"), pa.string()),
        "direction": pa.array(column("direction"), pa.string()),
        "price": pa.array(decimals(column("price")), PRICE),
        "amount": pa.array(decimals(column("amount")), PRICE),
        "iv": pa.array(floats("iv"), pa.float64()),
        "mark_price": pa.array(floats("mark_price"), pa.float64()),
        "index_price": pa.array(decimals(column("index_price")), PRICE),
        "tick_direction": pa.array(column("tick_direction"), pa.int32()),
        "expiry": pa.array([i.expiry for i in instruments], UTC_MS),
        "strike": pa.array([i.strike for i in instruments], PRICE),
        "option_type": pa.array([i.option_type for i in instruments], pa.string()),
        "block_trade_id": pa.array(optional("block_trade_id"), pa.string()),
        "liquidation": pa.array(optional("liquidation"), pa.string()),
    }
    return pa.Table.from_arrays(
        [arrays[name] for name in OPTION_TRADE_LAKE_SCHEMA.names], schema=OPTION_TRADE_LAKE_SCHEMA
    )


@dataclass(frozen=True)
class ValidatedTrades:
    """A page of trades after :func:`validate_trades`."""

    table: pa.Table
    rejected: list[RejectedTrade]
    added_fields: list[str]


def validate_trades(trades: Any, source: str) -> ValidatedTrades:
    """:func:`check_trades` then :func:`trades_to_table`, for callers that need no dedup."""
    added = check_trades(trades, source)
    table, rejected = trades_to_table(trades)
    return ValidatedTrades(table, rejected, added)


#: One candle of ``get_volatility_index_data``'s ``result.data``: ``[timestamp, open, high,
#: low, close]``, the index in percent (decoded exactly with :func:`decode_json`).
VOLATILITY_INDEX_CONTRACT = PositionalContract(
    dataset="deribit_volatility_index",
    fields=(
        ContractField("timestamp", WireType.INTEGER, UTC_MS, "Candle start (UTC)."),
        ContractField("open", WireType.NUMBER, PRICE, "First index value (percent)."),
        ContractField("high", WireType.NUMBER, PRICE, "Highest index value (percent)."),
        ContractField("low", WireType.NUMBER, PRICE, "Lowest index value (percent)."),
        ContractField("close", WireType.NUMBER, PRICE, "Last index value (percent)."),
    ),
)

#: Storage schema of the raw DVOL Parquet files: the currency, then the candle.
VOLATILITY_INDEX_LAKE_SCHEMA = pa.schema(
    [
        pa.field("currency", pa.string(), nullable=False),
        pa.field("resolution", pa.string(), nullable=False),
        *VOLATILITY_INDEX_CONTRACT.arrow_schema(),
    ],
    metadata={"contract": VOLATILITY_INDEX_CONTRACT.dataset},
)
