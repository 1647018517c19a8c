"""Declared contracts for exchange payloads, and their validation into typed Arrow tables.

One framework for every venue: a contract is a tuple of :class:`ContractField` (name, the
JSON type it must arrive as, the Arrow type it is stored as, its meaning with units, and for
object payloads its JSON key, whether it may be absent, and a range rule), in one of two
shapes:

* :class:`PositionalContract`: records are JSON arrays, fields by position (Binance klines);
* :class:`ObjectContract`: records are JSON objects, fields by key (Hyperliquid's info API,
  Deribit's trades).

Validation is strict: a payload that breaks the contract raises :class:`ContractViolation`
naming the dataset, the request, the field, and the expected and observed values, and
nothing is converted half-way. A decimal is stored only if it fits its column exactly:
nothing is ever rounded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation
from enum import Enum
from functools import cache, cached_property
from typing import Any

import pyarrow as pa

# Prices and sizes are exact decimals: Binance sends them as strings with 8 decimal places,
# and a float would lose the last digits of a sum over thousands of candles.
PRICE = pa.decimal128(38, 8)
UTC_MS = pa.timestamp("ms", tz="UTC")

_NUMERIC = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


_WIDE_CONTEXT = Context(prec=200)


class WireType(Enum):
    """The JSON type a field must arrive as."""

    INTEGER = "integer"
    NUMERIC_STRING = "numeric string"
    STRING = "string"
    BOOLEAN = "boolean"
    #: A JSON number decoded exactly: an int, or a finite ``Decimal`` (the body decoded with
    #: ``parse_float=Decimal``; a float would already have lost digits).
    NUMBER = "JSON number decoded exactly (Decimal)"

    def accepts(self, value: Any) -> bool:
        return _ACCEPTS[self](value)


#: Whether a decoded JSON value has the wire type (one function per type: fields look theirs
#: up once, as validation runs per value).
_ACCEPTS: dict[WireType, Callable[[Any], bool]] = {
    WireType.INTEGER: lambda value: type(value) is int,
    WireType.NUMERIC_STRING: lambda value: (
        type(value) is str and _NUMERIC.fullmatch(value) is not None
    ),
    WireType.NUMBER: lambda value: (
        type(value) is int or (type(value) is Decimal and value.is_finite())
    ),
    WireType.STRING: lambda value: type(value) is str,
    WireType.BOOLEAN: lambda value: type(value) is bool,
}


#: A field's range rule: ``(expected, observed)`` when a well-typed value is out of range.
RangeRule = Callable[[Any], "tuple[str, str] | None"]


@dataclass(frozen=True)
class ContractField:
    """One field of a contract: its name, wire type, storage type and meaning (with units).

    Attributes:
        name: the storage column name.
        wire: the JSON type the value must arrive as.
        arrow_type: the storage type.
        description: meaning, with units.
        nullable: ``null`` is accepted (and stored as NULL) besides the wire type.
        key: object payloads: the JSON key (default: ``name``).
        index: object payloads: the value is element ``index`` of the JSON array at ``key``
            (Hyperliquid's ``impactPxs`` is ``[bid, ask]``); a ``null`` array makes it null.
        required: object payloads: the key must be present (an absent optional key is
            NULL, so ``required=False`` implies ``nullable``).
        check: a range rule for well-typed values (non-negative, one of a set, ...).
    """

    name: str
    wire: WireType
    arrow_type: pa.DataType
    description: str
    nullable: bool = False
    key: str | None = None
    index: int | None = None
    required: bool = True
    check: RangeRule | None = None

    # Derived once per field (validation asks them for every value).
    @cached_property
    def json_key(self) -> str:
        return self.key or self.name

    @cached_property
    def label(self) -> str:
        """The field as it appears in the payload, e.g. ``impactPxs[0]``."""
        return self.json_key if self.index is None else f"{self.json_key}[{self.index}]"

    @cached_property
    def wire_accepts(self) -> Callable[[Any], bool]:
        return _ACCEPTS[self.wire]

    @cached_property
    def is_decimal(self) -> bool:
        return pa.types.is_decimal(self.arrow_type)

    def accepts(self, value: Any) -> bool:
        return (self.nullable and value is None) or self.wire.accepts(value)


class ContractViolation(ValueError):
    """A payload broke its dataset's contract.

    Attributes:
        dataset: the dataset, e.g. ``binance_klines``.
        source: what was requested, e.g. ``GET /api/v3/klines symbol=BTCUSDT ...``.
        field: the field at fault (``None`` when the payload as a whole is at fault).
        expected: what the contract declares.
        observed: what arrived (truncated to 200 characters).
    """

    #: ``drift`` (the exchange changed its payload) or ``malformed`` (a bad response).
    kind = "drift"

    def __init__(
        self, dataset: str, source: str, field: str | None, expected: str, observed: str
    ) -> None:
        self.dataset, self.source, self.field = dataset, source, field
        self.expected, self.observed = expected, observed[:200]
        where = f"field {field!r}" if field else "payload"
        super().__init__(
            f"{dataset}: {where} breaks the contract in {source}: "
            f"expected {expected}, observed {self.observed}"
        )


class MalformedResponse(ContractViolation):
    """An answer that is not the API's data at all (an HTML page from a proxy, an empty or
    undecodable body) or whose records are out of order: a bad response, not schema drift.

    The clients retry it like a 5xx (a proxy's error page often passes), and the asset's
    failure says "malformed response"; it is quarantined like a violation for inspection,
    but the drift sensor does not alert on it.
    """

    kind = "malformed"


def check_page_size(dataset: str, source: str, records: int, limit: int, what: str) -> None:
    """A page must not hold more records than the request's page size asked for.

    Raises:
        ContractViolation: ``records`` > ``limit`` (the server ignored the page size: paging
            on would never end, or skip records).
    """
    if records > limit:
        raise ContractViolation(
            dataset,
            source,
            None,
            f"at most {limit} {what} (the page size asked for)",
            f"{records} {what}: the server ignored the page size",
        )


@dataclass(frozen=True)
class PositionalContract:
    """The contract of a dataset whose records are JSON arrays with fields by position."""

    dataset: str
    fields: tuple[ContractField, ...]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def arrow_schema(self) -> pa.Schema:
        """The storage schema: one non-nullable column per field, in contract order."""
        return pa.schema(
            [pa.field(f.name, f.arrow_type, nullable=f.nullable) for f in self.fields],
            metadata={"contract": self.dataset},
        )

    def to_table(self, payload: Any, source: str) -> pa.Table:
        """Validate a decoded JSON payload (a list of records) and convert it to Arrow.

        Args:
            payload: the decoded JSON body, expected to be a list of arrays.
            source: the request, for error messages (endpoint, instrument, time range).

        Returns:
            A table with :meth:`arrow_schema`, one row per record, in payload order.

        Raises:
            ContractViolation: the payload is not a list, a record is not an array or is
                shorter than the contract (a field was removed), or a field has the wrong JSON
                type or a non-numeric value. Positions beyond the contract (a field the
                exchange added at the end) are ignored here; :meth:`added_fields` names them.
        """
        if not isinstance(payload, list):
            raise ContractViolation(
                self.dataset, source, None, "a JSON array of records", _describe(payload)
            )
        width = len(self.fields)
        for index, record in enumerate(payload):
            if not isinstance(record, list) or len(record) < width:
                observed = (
                    f"record {index} with {len(record)} fields: {record!r}"
                    if isinstance(record, list)
                    else f"record {index}: {_describe(record)}"
                )
                raise ContractViolation(
                    self.dataset,
                    source,
                    _missing_field(self, record),
                    f"an array of {width} fields {self.names}",
                    observed,
                )
        columns = list(zip(*(r[:width] for r in payload), strict=True)) if payload else [()] * width
        arrays = []
        for field, column in zip(self.fields, columns, strict=True):
            for index, value in enumerate(column):
                if not field.accepts(value):
                    raise ContractViolation(
                        self.dataset,
                        source,
                        field.name,
                        f"a {field.wire.value}" + (" or null" if field.nullable else ""),
                        f"{value!r} ({type(value).__name__}) in record {index}",
                    )
            arrays.append(_to_arrow(self.dataset, source, field, column))
        return pa.Table.from_arrays(arrays, schema=self.arrow_schema())

    def added_fields(self, payload: Any) -> list[str]:
        """Positions sent beyond the contract's fields, as ``field_<index>`` names (an
        exchange that adds a field appends it); empty when the records have the declared
        width. Call after :meth:`to_table` succeeded."""
        width = len(self.fields)
        longest = max((len(r) for r in payload if isinstance(r, list)), default=width)
        return [f"field_{index}" for index in range(width, longest)]


@dataclass(frozen=True)
class Validated:
    """A validated payload: the typed table and the undeclared keys that were dropped."""

    table: pa.Table
    #: JSON keys present in some record but declared by neither the contract nor its
    #: ``ignored_keys``, sorted (the exchange added a field: a warning, not a failure).
    added_fields: tuple[str, ...]


@dataclass(frozen=True)
class ObjectContract:
    """The contract of a dataset whose records are JSON objects with fields by key.

    Attributes:
        dataset: the dataset's name in violations (``hyperliquid_candles``).
        fields: the declared fields, in storage order.
        record_name: what one record is called in messages (``record``, ``trade``).
        record_id: a key whose value names the record in messages (``trade_id``), if any.
        ignored_keys: keys the exchange documents that are not stored; not reported as added.
    """

    dataset: str
    fields: tuple[ContractField, ...]
    record_name: str = "record"
    record_id: str | None = None
    ignored_keys: frozenset[str] = frozenset()

    @property
    def names(self) -> list[str]:
        """Storage column names, in contract order."""
        return [f.name for f in self.fields]

    @property
    def keys(self) -> frozenset[str]:
        """The JSON keys the contract declares."""
        return frozenset(f.json_key for f in self.fields)

    def arrow_schema(self) -> pa.Schema:
        """The storage schema: one column per field, in contract order."""
        return pa.schema(
            [
                pa.field(f.name, f.arrow_type, nullable=f.nullable or not f.required)
                for f in self.fields
            ],
            metadata={"contract": self.dataset},
        )

    def validate(self, payload: Any, source: str) -> tuple[str, ...]:
        """Check a decoded JSON payload (a list of objects) record by record, field by
        field, without converting it.

        Returns:
            The undeclared keys seen in any record (see :attr:`Validated.added_fields`).

        Raises:
            ContractViolation: the payload is not a list, a record is not an object, a
                required key is missing, or a value is null where not allowed, has the wrong
                JSON type, is not numeric, does not fit its decimal type exactly, or breaks
                its field's range rule. The violation's ``field`` is the JSON key as the
                exchange spells it (``fundingRate``, ``impactPxs[0]``).
        """
        return self._checked(payload, source, None)

    def to_table(self, payload: Any, source: str) -> Validated:
        """Validate a decoded JSON payload (see :meth:`validate`) and convert it to Arrow,
        in one pass.

        Returns:
            The table (:meth:`arrow_schema`, one row per record, in payload order) and the
            undeclared keys seen in any record.
        """
        columns: dict[str, list[Any]] = {field.name: [] for field in self.fields}
        added = self._checked(payload, source, columns)
        arrays = [
            _object_column(self.dataset, source, field, columns[field.name])
            for field in self.fields
        ]
        return Validated(pa.Table.from_arrays(arrays, schema=self.arrow_schema()), added)

    def _checked(
        self, payload: Any, source: str, columns: dict[str, list[Any]] | None
    ) -> tuple[str, ...]:
        if not isinstance(payload, list):
            raise ContractViolation(
                self.dataset,
                source,
                None,
                f"a JSON array of {self.record_name}s",
                _describe(payload),
            )
        declared = self.keys | self.ignored_keys
        added: set[str] = set()
        for index, record in enumerate(payload):
            if not isinstance(record, dict):
                raise ContractViolation(
                    self.dataset,
                    source,
                    None,
                    f"a JSON object per {self.record_name} with keys {sorted(self.keys)}",
                    f"{self.record_name} {index}: {_describe(record)}",
                )
            for field in self.fields:
                value = self._value(field, record, index, source)
                if columns is not None:
                    columns[field.name].append(value)
            added.update(key for key in record if key not in declared)
        return tuple(sorted(added))

    def _where(self, record: dict[str, Any], index: int) -> str:
        where = f"{self.record_name} {index}"
        if self.record_id is not None:
            where += f" ({self.record_id} {record.get(self.record_id)!r})"
        return where

    def _value(self, field: ContractField, record: dict[str, Any], index: int, source: str) -> Any:
        """The field's checked value in ``record`` (a Decimal of the column's scale for a
        decimal column; ``None`` for a legal null or an absent optional key)."""
        key = field.json_key
        if key not in record:
            if not field.required:
                return None
            raise ContractViolation(
                self.dataset,
                source,
                field.label,
                f"a {field.wire.value} under key {key!r}",
                f"key missing in {self._where(record, index)} (keys: {sorted(record)})",
            )
        value = record[key]
        if field.index is not None and value is not None:
            if not isinstance(value, list) or len(value) <= field.index:
                raise ContractViolation(
                    self.dataset,
                    source,
                    field.label,
                    f"an array of at least {field.index + 1} values",
                    f"{value!r} ({type(value).__name__}) in {self._where(record, index)}",
                )
            value = value[field.index]
        if value is None:
            if field.nullable or not field.required:
                return None
            raise ContractViolation(
                self.dataset,
                source,
                field.label,
                f"a {field.wire.value} (not null)",
                f"null in {self._where(record, index)}",
            )
        if not field.wire_accepts(value):
            raise ContractViolation(
                self.dataset,
                source,
                field.label,
                f"a {field.wire.value}",
                f"{value!r} ({type(value).__name__}) in {self._where(record, index)}",
            )
        problem = field.check(value) if field.check is not None else None
        if problem is not None:
            expected, observed = problem
            raise ContractViolation(
                self.dataset,
                source,
                field.label,
                expected,
                f"{observed} in {self._where(record, index)}",
            )
        if field.is_decimal:
            return _exact(self.dataset, source, field, value, self._where, record, index)
        return value


def exact_decimal(value: str | int | Decimal, arrow_type: pa.Decimal128Type) -> Decimal | None:
    """``value`` as a Decimal of ``arrow_type``'s scale, or ``None`` when that would round it
    or it has more integer digits than the type holds (Arrow's casts would silently wrap)."""
    precision, scale = arrow_type.precision, arrow_type.scale
    try:
        number = Decimal(value)
        exact = number.quantize(_quantum(scale), context=_WIDE_CONTEXT)
    except (InvalidOperation, TypeError, ValueError):
        return None
    if exact != number or exact.adjusted() >= precision - scale:
        return None
    return exact


@cache
def _quantum(scale: int) -> Decimal:
    return Decimal(1).scaleb(-scale)


def _exact(
    dataset: str,
    source: str,
    field: ContractField,
    value: Any,
    where: Callable[..., str],
    *where_args: Any,
) -> Decimal:
    """``value`` as an exact Decimal of the field's type (:func:`exact_decimal`), or the
    violation naming the field and the record (``where(*where_args)``, built only then) when
    the column cannot hold it exactly."""
    exact = exact_decimal(value, field.arrow_type)
    if exact is None:
        raise ContractViolation(
            dataset,
            source,
            field.label,
            f"a value representable exactly as {field.arrow_type} (never rounded)",
            f"{value!r} in {where(*where_args)}",
        )
    return exact


def _record(index: int) -> str:
    return f"record {index}"


def _object_column(
    dataset: str, source: str, field: ContractField, values: Sequence[Any]
) -> pa.Array:
    if pa.types.is_decimal(field.arrow_type):
        wire_type: pa.DataType = field.arrow_type
    elif pa.types.is_floating(field.arrow_type):
        values = [None if v is None else float(v) for v in values]
        wire_type = field.arrow_type
    elif field.wire is WireType.INTEGER:
        wire_type = pa.int64()
    elif field.wire is WireType.BOOLEAN:
        wire_type = pa.bool_()
    else:
        wire_type = pa.string()
    return _cast(dataset, source, field.label, values, wire_type, field.arrow_type)


def _cast(
    dataset: str,
    source: str,
    label: str,
    values: Sequence[Any],
    wire_type: pa.DataType,
    arrow_type: pa.DataType,
) -> pa.Array:
    """``values`` read as ``wire_type`` and cast to the storage type, or a violation naming
    the field when Arrow cannot (an integer beyond int64, a value the type cannot hold)."""
    try:
        return pa.array(values, type=wire_type).cast(arrow_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError) as exc:
        raise ContractViolation(
            dataset, source, label, f"a value representable as {arrow_type}", str(exc)
        ) from None


def _missing_field(contract: PositionalContract, record: Any) -> str | None:
    """The declared field a record one field short lacks, judged by the types of the others.

    A field removed from the middle shifts the rest left, so the last position is not the
    missing one: each field is tried as the missing one, and those for which every other
    value has its declared type remain. Returns that field, or the candidates joined with
    ``|`` when several fit (``open|high|low|close|volume`` for a Binance kline lacking one
    of its prices). A record short of several fields names the first position it lacks;
    ``None`` when the record is not a list.
    """
    if not isinstance(record, list) or len(record) >= len(contract.fields):
        return None
    if len(record) < len(contract.fields) - 1:  # several missing: name the first position
        return contract.fields[len(record)].name
    fits = [
        field.name
        for index, field in enumerate(contract.fields)
        if all(
            other.accepts(value)
            for other, value in zip(
                contract.fields[:index] + contract.fields[index + 1 :], record, strict=True
            )
        )
    ]
    return "|".join(fits) if fits else None


def _to_arrow(dataset: str, source: str, field: ContractField, column: Sequence[Any]) -> pa.Array:
    if pa.types.is_decimal(field.arrow_type) and field.wire is WireType.NUMBER:
        # JSON numbers decoded exactly (Decimal): stored only if the column holds them exactly.
        exact = [
            None if value is None else _exact(dataset, source, field, value, _record, index)
            for index, value in enumerate(column)
        ]
        return _cast(dataset, source, field.name, exact, field.arrow_type, field.arrow_type)
    if pa.types.is_decimal(field.arrow_type) and field.wire is WireType.NUMERIC_STRING:
        # Arrow's string-to-decimal cast can wrap around silently on values far beyond the
        # precision (e.g. 39 integer digits): check the magnitude exactly first.
        limit = Decimal(10) ** (field.arrow_type.precision - field.arrow_type.scale)
        for index, value in enumerate(column):
            if value is not None and abs(Decimal(value)) >= limit:
                raise ContractViolation(
                    dataset,
                    source,
                    field.name,
                    f"a value representable as {field.arrow_type}",
                    f"{value!r} in record {index}",
                )
    wire_type = pa.int64() if field.wire is WireType.INTEGER else pa.string()
    return _cast(dataset, source, field.name, column, wire_type, field.arrow_type)


def _describe(value: Any) -> str:
    return f"{type(value).__name__}: {value!r}"
