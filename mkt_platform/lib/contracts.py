"""Declared contracts for exchange payloads, and their validation into typed Arrow tables.

A contract names every field of a dataset in the order the exchange sends it (where the
API is positional, like Binance's kline arrays), the JSON type it must arrive as, and the
Arrow type it is stored as. Validation is strict: a payload that breaks the contract
raises :class:`ContractViolation` naming the dataset, the request, the field, and the
expected and observed values, and nothing is converted half-way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

import pyarrow as pa

# Prices and sizes are exact decimals: Binance sends them as strings with 8 decimal places,
# and a float would lose the last digits of a sum over thousands of candles.
PRICE = pa.decimal128(38, 8)
UTC_MS = pa.timestamp("ms", tz="UTC")

_NUMERIC = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


class WireType(Enum):
    """The JSON type a field must arrive as."""

    INTEGER = "integer"
    NUMERIC_STRING = "numeric string"
    STRING = "string"

    def accepts(self, value: Any) -> bool:
        if self is WireType.INTEGER:
            return type(value) is int
        if self is WireType.NUMERIC_STRING:
            return type(value) is str and _NUMERIC.fullmatch(value) is not None
        return type(value) is str


@dataclass(frozen=True)
class ContractField:
    """One field of a contract: its name, wire type, storage type and meaning (with units)."""

    name: str
    wire: WireType
    arrow_type: pa.DataType
    description: str
    #: ``null`` is accepted (and stored as NULL) besides the wire type.
    nullable: bool = False

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
    try:
        return pa.array(column, type=wire_type).cast(field.arrow_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError) as exc:
        raise ContractViolation(
            dataset, source, field.name, f"a value representable as {field.arrow_type}", str(exc)
        ) from None


def _describe(value: Any) -> str:
    return f"{type(value).__name__}: {value!r}"
