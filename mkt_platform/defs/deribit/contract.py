"""Contract of Deribit's public option trades, and the lake schema they are stored in.

Source: ``GET /api/v2/public/get_last_trades_by_currency_and_time`` (and the same path on
``history.deribit.com``), whose ``result.trades`` is a list of JSON objects keyed by name.
See https://docs.deribit.com/api-reference/market-data/public-get_last_trades_by_currency_and_time

Numbers must be decoded exactly: parse the body with :func:`decode_json` (``parse_float=
Decimal``), never with plain ``json.loads``, whose floats would lose digits. A price, amount
or index price with more than 8 decimals is a :class:`ContractViolation`, never rounded.

Validation is two-step so the client can deduplicate in between:

1. :func:`check_trades` checks the page as a whole: every required field present, of its
   JSON type and in its range. Any failure is a ``ContractViolation`` of the page. Unknown
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
from decimal import Context, Decimal, InvalidOperation
from typing import Any, Literal, NamedTuple

import pyarrow as pa

from mkt_platform.defs.deribit.instruments import InstrumentNameError, parse_instrument_name
from mkt_platform.lib.contracts import PRICE, UTC_MS, ContractViolation

DATASET = "deribit_option_trades"

JsonType = Literal["integer", "number", "string"]


@dataclass(frozen=True)
class TradeField:
    """One field of a Deribit trade object: wire type, whether it must be present, meaning."""

    name: str
    wire: JsonType
    required: bool
    description: str


#: The fields of a trade the platform reads, in Deribit's order. ``mark_price`` and ``iv``
#: may be absent or null (the QuantLet recording has no ``mark_price``); the rest must be
#: present and non-null.
TRADE_FIELDS: tuple[TradeField, ...] = (
    TradeField("trade_seq", "integer", True, "Sequence number of the trade in its instrument."),
    TradeField("trade_id", "string", True, "Unique (per currency) trade id; numeric for BTC."),
    TradeField("timestamp", "integer", True, "Trade time, UTC milliseconds since the epoch."),
    TradeField(
        "tick_direction", "integer", True, "0 plus tick, 1 zero-plus, 2 minus, 3 zero-minus."
    ),
    TradeField("price", "number", True, "Trade price, BTC per contract (inverse option)."),
    TradeField("mark_price", "number", False, "Mark price at the trade, BTC."),
    TradeField("iv", "number", False, "Implied volatility of the trade price, percent."),
    TradeField("instrument_name", "string", True, "Option name, e.g. BTC-1JAN22-47000-C."),
    TradeField("index_price", "number", True, "Underlying index at the trade, USD."),
    TradeField("direction", "string", True, "Taker side: 'buy' or 'sell'."),
    TradeField("amount", "number", True, "Trade size, contracts (1 contract = 1 BTC)."),
)
FIELDS_BY_NAME = {f.name: f for f in TRADE_FIELDS}

#: Fields Deribit documents for public trades that the lake does not store. They are
#: expected, so they are not reported as added fields.
KNOWN_UNSTORED_FIELDS = frozenset(
    {
        "contracts",
        "block_trade_id",
        "block_trade_leg_count",
        "block_rfq_id",
        "combo_id",
        "combo_trade_id",
        "liquidation",
    }
)

DIRECTIONS = ("buy", "sell")
TICK_DIRECTIONS = range(4)
#: Largest |value| a DECIMAL(38, 8) column holds.
_DECIMAL_LIMIT = Decimal(10) ** 30
_EIGHT_PLACES = Decimal("1e-8")
# Enough precision to quantize any DECIMAL(38, 8) value without InvalidOperation.
_EXACT = Context(prec=60)
_INT64_MAX = 2**63 - 1

#: Storage schema of the raw option-trade Parquet files, in this column order.
OPTION_TRADE_LAKE_SCHEMA = pa.schema(
    [
        pa.field("trade_id", pa.string(), nullable=False),
        pa.field("trade_seq", pa.int64(), nullable=False),
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
    """Check a decoded page of trades (``result.trades``) against the contract.

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
    if not isinstance(trades, list):
        raise ContractViolation(DATASET, source, None, "a JSON array of trades", _describe(trades))
    added: set[str] = set()
    for index, trade in enumerate(trades):
        if not isinstance(trade, dict):
            raise ContractViolation(
                DATASET,
                source,
                None,
                "a JSON object per trade",
                f"trade {index}: {_describe(trade)}",
            )
        for field in TRADE_FIELDS:
            _check_field(field, trade, index, source)
        added.update(k for k in trade if k not in FIELDS_BY_NAME and k not in KNOWN_UNSTORED_FIELDS)
    return sorted(added)


def _check_field(field: TradeField, trade: Mapping[str, Any], index: int, source: str) -> None:
    name = field.name
    where = f"in trade {index} (trade_id {trade.get('trade_id')!r})"
    if name not in trade or trade[name] is None:
        if field.required:
            state = "missing" if name not in trade else "null"
            raise ContractViolation(DATASET, source, name, f"a {field.wire}", f"{state} {where}")
        return
    value = trade[name]
    if not _has_wire_type(value, field.wire):
        raise ContractViolation(
            DATASET,
            source,
            name,
            f"a JSON {field.wire}"
            + (" decoded exactly (Decimal)" if field.wire == "number" else ""),
            f"{value!r} ({type(value).__name__}) {where}",
        )
    problem = _range_problem(name, value)
    if problem is not None:
        expected, observed = problem
        raise ContractViolation(DATASET, source, name, expected, f"{observed} {where}")


def _has_wire_type(value: Any, wire: JsonType) -> bool:
    if wire == "integer":
        return type(value) is int
    if wire == "number":
        return type(value) is int or (type(value) is Decimal and value.is_finite())
    return type(value) is str


def _range_problem(name: str, value: Any) -> tuple[str, str] | None:
    """``(expected, observed)`` when a well-typed value is out of its field's range."""
    if name in ("price", "amount", "index_price"):
        return _decimal_problem(value)
    if name in ("trade_seq", "timestamp") and not 0 <= value <= _INT64_MAX:
        return "an integer in 0..2^63-1", repr(value)
    if name == "tick_direction" and value not in TICK_DIRECTIONS:
        return "0, 1, 2 or 3", repr(value)
    if name == "direction" and value not in DIRECTIONS:
        return "'buy' or 'sell'", repr(value)
    if name in ("trade_id", "instrument_name") and not value:
        return "a non-empty string", repr(value)
    return None


def _decimal_problem(value: int | Decimal) -> tuple[str, str] | None:
    number = Decimal(value)
    if number < 0:
        return "a non-negative number", str(value)
    if number >= _DECIMAL_LIMIT:
        return "a number below 1e30 (DECIMAL(38, 8))", str(value)
    try:
        exact = _EXACT.quantize(number, _EIGHT_PLACES) == number
    except InvalidOperation:
        exact = False
    if not exact:
        return "at most 8 decimal places (decimal128(38, 8)), never rounded", str(value)
    return None


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

    def floats(name: str) -> list[float | None]:
        return [None if row.get(name) is None else float(row[name]) for row in rows]

    def decimals(values: Iterable[int | Decimal]) -> list[Decimal]:
        return [Decimal(v) for v in values]

    arrays = {
        "trade_id": pa.array(column("trade_id"), pa.string()),
        "trade_seq": pa.array(column("trade_seq"), pa.int64()),
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


def _describe(value: Any) -> str:
    return f"{type(value).__name__}: {value!r}"
