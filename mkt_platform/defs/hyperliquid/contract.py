"""Contracts of Hyperliquid's info API payloads (``POST /info``) and their Arrow lake schemas.

Hyperliquid answers JSON *objects* keyed by field name, not positional arrays like Binance,
so each contract here is an :class:`ObjectContract`: every declared field is looked up by its
JSON key. Numbers arrive as decimal strings (``"0.001604"``), times and counts as integers.

* A missing key, a JSON type other than the declared one (a JSON number where a decimal
  string is expected, say), a non-numeric string, or a value the storage type cannot hold
  exactly raises :class:`~mkt_platform.lib.contracts.ContractViolation`. The violation's
  ``field`` is the JSON key as Hyperliquid spells it (``fundingRate``, ``impactPxs[0]``).
* A key the contract does not declare is **not** an error: it is reported in
  :attr:`Validated.added_fields` so the caller can warn about schema drift, and dropped.

Decimal types (every value is checked to fit exactly; nothing is ever rounded):

* ``PRICE`` = DECIMAL(38, 8) for prices (quote currency, USDC) and candle volumes (base).
  Hyperliquid perp prices have at most 6 decimals (8 for spot).
* ``FINE`` = DECIMAL(38, 12) for funding rates, premiums, open interest and 24h volumes.
  The recordings carry up to 10 decimals there (``"-0.0000015186"`` funding,
  ``"1516669192.1953897476"`` dayNtlVlm in the 2026 asset contexts; 8 in the 2023 funding
  history), so 12 leaves headroom and still allows 26 integer digits.

Endpoint docs:
https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/info-endpoint
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation
from typing import Any

import pyarrow as pa

from mkt_platform.lib.contracts import PRICE, UTC_MS, ContractViolation, WireType

#: Funding rates, premiums, open interest and 24h volumes: up to 10 decimals recorded.
FINE = pa.decimal128(38, 12)

#: Hyperliquid candle intervals with a fixed length, in milliseconds ("1M" is a calendar month).
INTERVAL_MS: dict[str, int] = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}
#: Every interval ``candleSnapshot`` accepts.
INTERVALS = frozenset({*INTERVAL_MS, "1M"})

_WIDE_CONTEXT = Context(prec=200)


@dataclass(frozen=True)
class ObjectField:
    """One field of an :class:`ObjectContract`.

    Attributes:
        name: the storage column name (snake case).
        key: the JSON key Hyperliquid sends.
        wire: the JSON type the value must arrive as.
        arrow_type: the storage type.
        description: meaning, with units.
        nullable: JSON ``null`` is a legal value (the key must still be present).
        index: when set, the value is element ``index`` of the JSON array at ``key``
            (``impactPxs`` is ``[bid, ask]``); a ``null`` array makes the field null.
    """

    name: str
    key: str
    wire: WireType
    arrow_type: pa.DataType
    description: str
    nullable: bool = False
    index: int | None = None

    @property
    def label(self) -> str:
        """The field as it appears in the payload, e.g. ``impactPxs[0]``."""
        return self.key if self.index is None else f"{self.key}[{self.index}]"


@dataclass(frozen=True)
class Validated:
    """A validated payload: the typed table and the undeclared keys that were dropped."""

    table: pa.Table
    #: JSON keys present in some record but not declared by the contract, sorted.
    added_fields: tuple[str, ...]


@dataclass(frozen=True)
class ObjectContract:
    """The contract of a dataset whose records are JSON objects with fields by name."""

    dataset: str
    fields: tuple[ObjectField, ...]

    @property
    def names(self) -> list[str]:
        """Storage column names, in contract order."""
        return [f.name for f in self.fields]

    @property
    def keys(self) -> frozenset[str]:
        """The JSON keys the contract declares."""
        return frozenset(f.key for f in self.fields)

    def arrow_schema(self) -> pa.Schema:
        """The storage schema: one column per field, in contract order."""
        return pa.schema(
            [pa.field(f.name, f.arrow_type, nullable=f.nullable) for f in self.fields],
            metadata={"contract": self.dataset},
        )

    def to_table(self, payload: Any, source: str) -> Validated:
        """Validate a decoded JSON payload (a list of objects) and convert it to Arrow.

        Args:
            payload: the decoded JSON body, expected to be a list of objects.
            source: the request, for error messages (endpoint, type, coin, time range).

        Returns:
            The table (:meth:`arrow_schema`, one row per record, in payload order) and the
            undeclared keys seen in any record.

        Raises:
            ContractViolation: the payload is not a list, a record is not an object, a
                declared key is missing, or a value has the wrong JSON type, is not numeric,
                or does not fit its decimal type exactly.
        """
        if not isinstance(payload, list):
            raise ContractViolation(
                self.dataset, source, None, "a JSON array of objects", _describe(payload)
            )
        declared = self.keys
        added: set[str] = set()
        for index, record in enumerate(payload):
            if not isinstance(record, dict):
                raise ContractViolation(
                    self.dataset,
                    source,
                    None,
                    f"a JSON object with keys {sorted(declared)}",
                    f"record {index}: {_describe(record)}",
                )
            added.update(key for key in record if key not in declared)
        arrays = [self._column(field, payload, source) for field in self.fields]
        table = pa.Table.from_arrays(arrays, schema=self.arrow_schema())
        return Validated(table, tuple(sorted(added)))

    def _column(self, field: ObjectField, records: list[dict[str, Any]], source: str) -> pa.Array:
        values: list[Any] = []
        for index, record in enumerate(records):
            if field.key not in record:
                raise ContractViolation(
                    self.dataset,
                    source,
                    field.label,
                    f"a {field.wire.value} under key {field.key!r}",
                    f"key missing in record {index} (keys: {sorted(record)})",
                )
            value = record[field.key]
            if field.index is not None and value is not None:
                if not isinstance(value, list) or len(value) <= field.index:
                    raise ContractViolation(
                        self.dataset,
                        source,
                        field.label,
                        f"an array of at least {field.index + 1} values",
                        f"{value!r} ({type(value).__name__}) in record {index}",
                    )
                value = value[field.index]
            if value is None:
                if not field.nullable:
                    raise ContractViolation(
                        self.dataset,
                        source,
                        field.label,
                        f"a {field.wire.value} (not null)",
                        f"null in record {index}",
                    )
                values.append(None)
                continue
            if not field.wire.accepts(value):
                raise ContractViolation(
                    self.dataset,
                    source,
                    field.label,
                    f"a {field.wire.value}",
                    f"{value!r} ({type(value).__name__}) in record {index}",
                )
            if pa.types.is_decimal(field.arrow_type):
                value = self._exact_decimal(field, value, index, source)
            values.append(value)
        return _to_arrow(self.dataset, source, field, values)

    def _exact_decimal(self, field: ObjectField, text: str, index: int, source: str) -> Decimal:
        """``text`` as a Decimal of the field's scale, or a violation if that would round or
        overflow (Arrow's string cast silently wraps values with too many integer digits)."""
        precision, scale = field.arrow_type.precision, field.arrow_type.scale
        try:
            value = Decimal(text)
            exact = value.quantize(Decimal(1).scaleb(-scale), context=_WIDE_CONTEXT)
        except InvalidOperation:
            exact = None
        if exact is None or exact != value or exact.adjusted() >= precision - scale:
            raise ContractViolation(
                self.dataset,
                source,
                field.label,
                f"a value representable exactly as {field.arrow_type}",
                f"{text!r} in record {index}",
            )
        return exact


def _to_arrow(dataset: str, source: str, field: ObjectField, values: Sequence[Any]) -> pa.Array:
    if pa.types.is_decimal(field.arrow_type):
        wire_type: pa.DataType = field.arrow_type
    elif field.wire is WireType.INTEGER:
        wire_type = pa.int64()
    else:
        wire_type = pa.string()
    try:
        return pa.array(values, type=wire_type).cast(field.arrow_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError) as exc:
        raise ContractViolation(
            dataset, source, field.label, f"a value representable as {field.arrow_type}", str(exc)
        ) from None


def _describe(value: Any) -> str:
    return f"{type(value).__name__}: {value!r}"


def _f(
    name: str, key: str, wire: WireType, arrow_type: pa.DataType, description: str
) -> ObjectField:
    return ObjectField(name, key, wire, arrow_type, description)


_INT, _NUM, _STR = WireType.INTEGER, WireType.NUMERIC_STRING, WireType.STRING

#: One ``candleSnapshot`` candle: ``{"t","T","s","i","o","c","h","l","v","n"}``.
CANDLE_CONTRACT = ObjectContract(
    dataset="hyperliquid_candles",
    fields=(
        _f("coin", "s", _STR, pa.string(), "Coin (perp asset name), e.g. BTC or kPEPE."),
        _f("open_time", "t", _INT, UTC_MS, "Candle open time (UTC)."),
        _f(
            "close_time", "T", _INT, UTC_MS, "Candle close time (UTC), inclusive: t + interval - 1."
        ),
        _f("interval", "i", _STR, pa.string(), "Candle interval, e.g. 1h."),
        _f("open", "o", _NUM, PRICE, "First trade price (quote, USDC)."),
        _f("high", "h", _NUM, PRICE, "Highest trade price (quote, USDC)."),
        _f("low", "l", _NUM, PRICE, "Lowest trade price (quote, USDC)."),
        _f("close", "c", _NUM, PRICE, "Last trade price (quote, USDC)."),
        _f("volume", "v", _NUM, PRICE, "Traded volume (base units of the coin)."),
        _f("trades", "n", _INT, pa.int64(), "Number of trades."),
    ),
)

#: One ``fundingHistory`` record: ``{"coin","fundingRate","premium","time"}``.
FUNDING_CONTRACT = ObjectContract(
    dataset="hyperliquid_funding",
    fields=(
        _f("coin", "coin", _STR, pa.string(), "Coin (perp asset name)."),
        _f(
            "time",
            "time",
            _INT,
            UTC_MS,
            "Funding time (UTC) as sent, with its millisecond jitter (e.g. 08:00:00.388).",
        ),
        _f(
            "funding_rate",
            "fundingRate",
            _NUM,
            FINE,
            "Funding rate for the period (fraction of notional; hourly since 2023-06-08, "
            "8-hourly before).",
        ),
        _f("premium", "premium", _NUM, FINE, "Premium index (mark vs oracle, fraction)."),
    ),
)

#: One perp asset context (second element of ``metaAndAssetCtxs``). The coin is not in it:
#: it is the meta universe entry at the same index, added by the client.
ASSET_CTX_CONTRACT = ObjectContract(
    dataset="hyperliquid_asset_ctxs",
    fields=(
        _f("funding", "funding", _NUM, FINE, "Current predicted hourly funding rate (fraction)."),
        _f("open_interest", "openInterest", _NUM, FINE, "Open interest (base units)."),
        _f("prev_day_px", "prevDayPx", _NUM, PRICE, "Mark price 24h ago (quote, USDC)."),
        _f("day_ntl_vlm", "dayNtlVlm", _NUM, FINE, "24h notional volume (quote, USDC)."),
        ObjectField(
            "premium",
            "premium",
            _NUM,
            FINE,
            "Premium index (fraction); null for assets without a book (delisted).",
            nullable=True,
        ),
        _f("oracle_px", "oraclePx", _NUM, PRICE, "Oracle price (quote, USDC)."),
        _f("mark_px", "markPx", _NUM, PRICE, "Mark price (quote, USDC)."),
        ObjectField(
            "mid_px",
            "midPx",
            _NUM,
            PRICE,
            "Order book mid price (quote, USDC); null if no book.",
            nullable=True,
        ),
        ObjectField(
            "impact_bid_px",
            "impactPxs",
            _NUM,
            PRICE,
            "Impact bid price (quote, USDC), impactPxs[0]; null if no book.",
            nullable=True,
            index=0,
        ),
        ObjectField(
            "impact_ask_px",
            "impactPxs",
            _NUM,
            PRICE,
            "Impact ask price (quote, USDC), impactPxs[1]; null if no book.",
            nullable=True,
            index=1,
        ),
        _f("day_base_vlm", "dayBaseVlm", _NUM, FINE, "24h volume (base units)."),
    ),
)

#: Lake schema of candles: the contract's columns (the coin is in every candle).
CANDLE_LAKE_SCHEMA = CANDLE_CONTRACT.arrow_schema()

#: Lake schema of funding history: the contract's columns (the coin is in every record).
FUNDING_LAKE_SCHEMA = FUNDING_CONTRACT.arrow_schema()

#: Lake schema of asset contexts: the coin (from the meta universe), then the context fields.
ASSET_CTX_LAKE_SCHEMA = pa.schema(
    [pa.field("coin", pa.string(), nullable=False), *ASSET_CTX_CONTRACT.arrow_schema()],
    metadata={"contract": ASSET_CTX_CONTRACT.dataset},
)
