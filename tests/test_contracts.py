"""Tests of PositionalContract / ContractViolation on the Binance kline contract."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from mkt_platform.defs.binance.contract import KLINE_CONTRACT
from mkt_platform.lib.contracts import ContractViolation, WireType

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
BINANCE_DIR = DATA_DIR / "binance"
SOURCE = "GET /api/v3/klines symbol=BTCUSDT interval=1h [test]"

Row = list[Any]


@pytest.fixture(scope="module")
def january() -> list[Row]:
    """The recorded BTCUSDT 1h klines of January 2023 (744 real Binance rows)."""
    return json.loads((BINANCE_DIR / "klines_BTCUSDT_1h_2023-01.json").read_text())


@pytest.fixture
def row(january: list[Row]) -> Row:
    """A fresh copy of the first real kline, to mutate."""
    return list(january[0])


def violation(payload: Any) -> ContractViolation:
    with pytest.raises(ContractViolation) as info:
        KLINE_CONTRACT.to_table(payload, SOURCE)
    assert info.value.source == SOURCE
    assert info.value.dataset == "binance_klines"
    assert SOURCE in str(info.value)
    return info.value


def with_value(row: Row, index: int, value: Any) -> Row:
    row[index] = value
    return row


@pytest.mark.parametrize(
    "name",
    [
        "klines_BTCUSDT_1h_2023-01.json",
        "klines_ETHUSDT_1h_2023-03.json",
        "klines_SOLUSDT_1h_2023-06.json",
        "klines_BTCUSDT_1d_2022-01_to_2023-12.json",
    ],
)
def test_real_payload_converts(name: str) -> None:
    """Guards against rejecting (or mangling) what Binance really sends."""
    payload = json.loads((BINANCE_DIR / name).read_text())
    table = KLINE_CONTRACT.to_table(payload, SOURCE)
    assert table.num_columns == 12
    assert table.column_names == KLINE_CONTRACT.names
    assert table.num_rows == len(payload)
    assert table.schema.equals(KLINE_CONTRACT.arrow_schema())
    assert table["open_time"].cast(pa.int64()).to_pylist() == [r[0] for r in payload]
    assert table["close_time"].cast(pa.int64()).to_pylist() == [r[6] for r in payload]
    assert table["high"].to_pylist() == [Decimal(r[2]) for r in payload]
    assert table["trades"].to_pylist() == [r[8] for r in payload]
    assert table["ignore"].to_pylist() == [r[11] for r in payload]


def test_schema_nullability_and_tag() -> None:
    """Guards against a storage schema that admits nulls in OHLCV or loses its contract name.

    Only the fields a replayed freqtrade recording lacks may be NULL; open time and OHLCV never.
    """
    schema = KLINE_CONTRACT.arrow_schema()
    assert len(schema) == 12
    assert [f.name for f in schema if not f.nullable] == [
        "open_time",
        "open",
        "high",
        "low",
        "close",
        "volume",
    ]
    assert schema.metadata == {b"contract": b"binance_klines"}


def test_null_is_accepted_only_where_declared(row: Row) -> None:
    """Guards against a null price slipping through, or a null close time being refused."""
    lacking = [*row[:6], None, None, None, None, None, None]
    table = KLINE_CONTRACT.to_table([lacking], SOURCE)
    assert table["close_time"].null_count == 1
    assert table["trades"].null_count == 1
    error = violation([[row[0], None, *row[2:]]])
    assert error.field == "open"
    assert "or null" not in error.expected


def test_empty_payload_is_an_empty_table() -> None:
    """Guards against an empty page crashing the column transposition."""
    table = KLINE_CONTRACT.to_table([], SOURCE)
    assert table.num_rows == 0
    assert table.schema.equals(KLINE_CONTRACT.arrow_schema())


def test_record_with_13_fields_is_an_added_field(row: Row) -> None:
    """Guards the drift rule for positional payloads: a field appended by the exchange is
    reported by name and the 12 declared fields are still read from their positions."""
    payload = [row, [*row, "extra"]]
    table = KLINE_CONTRACT.to_table(payload, SOURCE)
    assert table.num_rows == 2
    assert table.column_names == KLINE_CONTRACT.names
    assert table["open"][1].as_py() == table["open"][0].as_py()
    assert KLINE_CONTRACT.added_fields(payload) == ["field_12"]
    assert KLINE_CONTRACT.added_fields([row]) == []


@pytest.mark.parametrize(
    ("record", "field"),
    [
        # The last three fields are all numeric strings: any one of them may be the missing one.
        (lambda r: r[:11], "taker_buy_base_volume|taker_buy_quote_volume|ignore"),
        # Issue 12, fault 7: a missing close was reported as field 'ignore' (the last position).
        (lambda r: r[:4] + r[5:], "open|high|low|close|volume"),
        (lambda r: r[:5] + r[6:], "open|high|low|close|volume"),
        (lambda r: r[:6] + r[7:], "close_time"),  # the only integer among its neighbours
        (lambda r: r[:1], "open"),
        (lambda r: r[:0], "open_time"),
    ],
    ids=["last", "close", "volume", "close_time", "all-but-one", "empty"],
)
def test_short_record_names_the_missing_field(row: Row, record, field: str) -> None:
    """Guards against a short record shifting fields into the wrong columns, and against
    naming the last position when a field in the middle was removed."""
    error = violation([record(row)])
    assert error.field == field
    assert f"field {field!r}" in str(error)


@pytest.mark.parametrize("record", [{"open_time": 1}, "1672531200000", None, 5])
def test_record_that_is_not_an_array_is_rejected(record: Any) -> None:
    """Guards against non-array records crashing with a TypeError instead of a violation."""
    error = violation([record])
    assert error.field is None
    assert "record 0" in error.observed


@pytest.mark.parametrize("payload", [{"code": -1121, "msg": "Invalid symbol."}, None, "[]", 3])
def test_payload_that_is_not_a_list_is_rejected(payload: Any) -> None:
    """Guards against a JSON object/scalar body being iterated as if it were klines."""
    error = violation(payload)
    assert error.field is None
    assert "payload breaks the contract" in str(error)
    assert type(payload).__name__ in error.observed


@pytest.mark.parametrize(("index", "field"), [(0, "open_time"), (6, "close_time"), (8, "trades")])
def test_bool_is_not_an_integer(row: Row, index: int, field: str) -> None:
    """Guards against isinstance(True, int) letting a boolean through as a time or count."""
    assert WireType.INTEGER.accepts(True) is False
    error = violation([with_value(row, index, True)])
    assert error.field == field
    assert "True (bool)" in error.observed


@pytest.mark.parametrize("value", [1672531200000.0, "1672531200000", None])
def test_open_time_must_be_a_json_integer(row: Row, value: Any) -> None:
    """Guards against floats/strings/nulls being coerced into timestamps."""
    error = violation([with_value(row, 0, value)])
    assert error.field == "open_time"
    assert error.expected == "a integer"


@pytest.mark.parametrize(
    "value", ["", ".", "abc", "NaN", "inf", " 1.0", "1.0 ", "1,000.00", "0x10", "1e", "--1", "+1"]
)
def test_non_numeric_strings_are_rejected(row: Row, value: str) -> None:
    """Guards against strings the decimal cast might misread (or a float parser accept)."""
    error = violation([with_value(row, 2, value)])
    assert error.field == "high"
    assert repr(value) in error.observed


@pytest.mark.parametrize("value", [16541.77, 16541, None, True])
def test_price_must_be_a_string(row: Row, value: Any) -> None:
    """Guards against JSON numbers for prices (a float has already lost precision)."""
    error = violation([with_value(row, 1, value)])
    assert error.field == "open"
    assert error.expected == "a numeric string"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1e-5", Decimal("0.00001")), ("1E-5", Decimal("0.00001")), ("2.5e3", Decimal("2500"))],
)
def test_scientific_notation_accepted_when_decimal_cast_is_exact(
    row: Row, value: str, expected: Decimal
) -> None:
    """Guards against rejecting (or mis-scaling) exponent strings that fit decimal128(38, 8)."""
    table = KLINE_CONTRACT.to_table([with_value(row, 5, value)], SOURCE)
    assert table["volume"][0].as_py() == expected


@pytest.mark.parametrize(
    "value", ["1e-9", "1E-12", "1e50", "0.000000001", "16541.770000001", "1" * 31 + ".5"]
)
def test_values_decimal128_38_8_cannot_hold_are_rejected(row: Row, value: str) -> None:
    """Guards against a cast that silently rounds sub-1e-8 digits or overflows 38 digits."""
    error = violation([with_value(row, 5, value)])
    assert error.field == "volume"
    assert "decimal128(38, 8)" in error.expected


def test_violation_reports_first_bad_record_index(january: list[Row]) -> None:
    """Guards against errors that do not say which record is at fault."""
    payload = [list(r) for r in january[:50]]
    payload[42][3] = "low"
    error = violation(payload)
    assert error.field == "low"
    assert "record 42" in error.observed


def test_observed_is_truncated_to_200_characters(row: Row) -> None:
    """Guards against a huge payload (e.g. an HTML page) flooding logs via the error message."""
    error = violation([with_value(row, 2, "x" * 10_000)])
    assert error.field == "high"
    assert len(error.observed) <= 200
    assert len(str(error)) < 1_000

    error = violation([[*row, "y" * 10_000]])
    assert len(error.observed) <= 200

    direct = ContractViolation("d", "s", None, "e", "z" * 500)
    assert direct.observed == "z" * 200
    assert (direct.dataset, direct.source, direct.field, direct.expected) == ("d", "s", None, "e")


@pytest.mark.parametrize(("index", "field"), [(0, "open_time"), (8, "trades")])
def test_integer_beyond_int64_is_a_violation(row: Row, index: int, field: str) -> None:
    """Guards against a JSON integer too big for int64 crashing with a non-contract error."""
    error = violation([with_value(row, index, 2**63)])
    assert error.field == field


@pytest.mark.parametrize("digits", [31, 39])
def test_price_beyond_the_decimal_precision_is_a_violation(row: Row, digits: int) -> None:
    """Guards against Arrow's string-to-decimal cast wrapping a huge value around silently
    (a 39-digit price with a fraction came back as a different number)."""
    huge = "1" + "0" * (digits - 1) + ".5"
    error = violation([[row[0], huge, *row[2:]]])
    assert error.field == "open"
    assert "decimal128(38, 8)" in error.expected
