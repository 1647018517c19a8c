"""Tests of the Deribit option instrument-name parser, against the names in the real recording."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from mkt_platform.defs.deribit.instruments import (
    InstrumentNameError,
    OptionInstrument,
    parse_instrument_name,
)
from tests.conftest import SHARED_DATA

QUANTLET_CSV = SHARED_DATA / "deribit" / "quantlet_trades_BTC_options_2022-01-01_00-10UTC.csv"


def recorded_names() -> set[str]:
    with QUANTLET_CSV.open(newline="") as fh:
        return {row["instrument_name"] for row in csv.DictReader(fh)}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "BTC-1JAN22-47000-C",
            OptionInstrument("BTC", datetime(2022, 1, 1, 8, tzinfo=UTC), Decimal(47000), "C"),
        ),
        (
            "BTC-30DEC22-100000-P",
            OptionInstrument("BTC", datetime(2022, 12, 30, 8, tzinfo=UTC), Decimal(100000), "P"),
        ),
        (
            "XRP_USDC-30MAY25-0d625-C",
            OptionInstrument(
                "XRP_USDC", datetime(2025, 5, 30, 8, tzinfo=UTC), Decimal("0.625"), "C"
            ),
        ),
        (
            "ETH-29FEB24-3500-P",  # 2024 is a leap year
            OptionInstrument("ETH", datetime(2024, 2, 29, 8, tzinfo=UTC), Decimal(3500), "P"),
        ),
    ],
)
def test_parses_option_names(name: str, expected: OptionInstrument) -> None:
    """Guards the fields, the 08:00 UTC expiry and exact (decimal-'d') strikes."""
    parsed = parse_instrument_name(name)
    assert parsed == expected
    assert parsed.expiry.tzinfo is UTC
    assert isinstance(parsed.strike, Decimal)


def test_every_recorded_instrument_parses_consistently() -> None:
    """Guards against the parser rejecting or mangling any of the 171 real names."""
    names = recorded_names()
    assert len(names) == 171
    expiries = set()
    for name in names:
        parsed = parse_instrument_name(name)
        currency, expiry_code, strike, option_type = name.split("-")
        assert parsed.currency == currency == "BTC"
        assert parsed.strike == Decimal(strike)
        assert parsed.option_type == option_type
        assert parsed.expiry.hour == 8 and parsed.expiry.minute == 0
        assert parsed.expiry.strftime("%d%b%y").upper().lstrip("0") == expiry_code
        expiries.add(parsed.expiry)
    assert len(expiries) == 11  # SOURCES.md: 11 expiries, 1JAN22 ... 30DEC22
    assert min(expiries) == datetime(2022, 1, 1, 8, tzinfo=UTC)
    assert max(expiries) == datetime(2022, 12, 30, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "reason_part"),
    [
        ("BTC-PERPETUAL", "perpetual"),
        ("ETH_USDC-PERPETUAL", "perpetual"),
        ("BTC-31DEC21", "future"),
        ("BTC-31FEB22-40000-C", "no such date"),
        ("BTC-30FEB24-40000-C", "no such date"),
        ("BTC-32JAN22-40000-C", "no such date"),
        ("BTC-1JAX22-40000-C", "unknown month"),
        ("BTC-01JAN22-40000-C", "does not match"),  # Deribit writes no leading zero
        ("BTC-1jan22-40000-C", "does not match"),
        ("BTC-1JAN2022-40000-C", "does not match"),
        ("BTC-1JAN22-40000-X", "does not match"),
        ("BTC-1JAN22-040000-C", "does not match"),
        ("BTC-1JAN22-0-C", "strike is zero"),
        ("BTC-1JAN22-1d123456789-C", "more than 8 decimal"),
        ("BTC-1JAN22--C", "does not match"),
        ("BTC-1JAN22-47000-C-X", "5"),
        ("BTC-FS-31DEC21_PERP", "3"),
        (" BTC-1JAN22-47000-C", "does not match"),
        ("", "1"),
        ("garbage", "1"),
    ],
)
def test_rejects_non_options_and_bad_names(name: str, reason_part: str) -> None:
    """Guards against futures, perpetuals, impossible dates or garbage passing as options."""
    with pytest.raises(InstrumentNameError) as info:
        parse_instrument_name(name)
    assert info.value.name == name
    assert reason_part in info.value.reason
    assert repr(name) in str(info.value)


def test_rejects_non_strings() -> None:
    """Guards against a JSON null/number reaching the regex and raising a TypeError."""
    for value in (None, 47000, b"BTC-1JAN22-47000-C"):
        with pytest.raises(InstrumentNameError, match="expected a string"):
            parse_instrument_name(value)  # type: ignore[arg-type]
