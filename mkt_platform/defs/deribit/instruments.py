"""Parser for Deribit option instrument names, e.g. ``BTC-1JAN22-47000-C``.

Deribit names an option ``{CURRENCY}-{D}{MON}{YY}-{STRIKE}-{C|P}``:

* ``CURRENCY`` is the underlying, optionally with its settlement currency for linear options
  (``BTC``, ``ETH``, ``XRP_USDC``).
* ``D`` is the day of month without a leading zero, ``MON`` the upper-case English month
  abbreviation and ``YY`` the two-digit year (20YY).
* ``STRIKE`` is in the quote currency (USD for BTC options). A decimal strike writes its
  point as ``d``: ``XRP_USDC-30MAY25-0d625-C`` has strike 0.625.
* ``C`` is a call, ``P`` a put.

Every Deribit option expires at 08:00 UTC on its expiry date. Futures (``BTC-31DEC21``),
perpetuals (``BTC-PERPETUAL``), combos (``BTC-FS-31DEC21_PERP``) and anything else are
rejected with :class:`InstrumentNameError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

#: Deribit options expire at this UTC hour on their expiry date.
EXPIRY_HOUR_UTC = 8
#: Strikes are stored as DECIMAL(38, 8); a strike with more decimals cannot be stored exactly.
MAX_STRIKE_DECIMALS = 8
_STRIKE_LIMIT = Decimal(10) ** 30

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_MONTH_NUMBER = {name: number for number, name in enumerate(MONTHS, start=1)}

_CURRENCY = r"[A-Z][A-Z0-9]*(?:_[A-Z][A-Z0-9]*)?"
_OPTION_RE = re.compile(
    rf"(?P<currency>{_CURRENCY})"
    r"-(?P<day>[1-9][0-9]?)(?P<month>[A-Z]{3})(?P<year>[0-9]{2})"
    r"-(?P<strike>(?:0|[1-9][0-9]*)(?:d[0-9]+)?)"
    r"-(?P<type>[CP])"
)
_FUTURE_RE = re.compile(rf"{_CURRENCY}-[1-9][0-9]?[A-Z]{{3}}[0-9]{{2}}")
_PERPETUAL_RE = re.compile(rf"{_CURRENCY}-PERPETUAL")


class InstrumentNameError(ValueError):
    """``name`` is not a Deribit option instrument name.

    Attributes:
        name: the offending name, as given.
        reason: why it was rejected (e.g. ``"a perpetual, not an option"``).
    """

    def __init__(self, name: object, reason: str) -> None:
        self.name, self.reason = name, reason
        super().__init__(f"{name!r} is not a Deribit option instrument name: {reason}")


@dataclass(frozen=True)
class OptionInstrument:
    """A parsed Deribit option name.

    Attributes:
        currency: the currency part of the name (``BTC``, ``XRP_USDC``).
        expiry: 08:00 UTC on the expiry date (timezone-aware).
        strike: the strike in the quote currency (USD for BTC options), exact.
        option_type: ``"C"`` (call) or ``"P"`` (put).
    """

    currency: str
    expiry: datetime
    strike: Decimal
    option_type: Literal["C", "P"]


def parse_instrument_name(name: str) -> OptionInstrument:
    """Parse a Deribit option instrument name such as ``BTC-30DEC22-100000-P``.

    Raises:
        InstrumentNameError: ``name`` is not a string, not an option (a future, perpetual or
            combo), has an unknown month, a day with a leading zero, a date that does not
            exist (``31FEB22``), a zero strike or one with more than 8 decimals, or is
            otherwise malformed.
    """
    if not isinstance(name, str):
        raise InstrumentNameError(name, f"expected a string, got {type(name).__name__}")
    match = _OPTION_RE.fullmatch(name)
    if match is None:
        raise InstrumentNameError(name, _why_not_an_option(name))
    month = _MONTH_NUMBER.get(match["month"])
    if month is None:
        raise InstrumentNameError(
            name, f"unknown month {match['month']!r}, expected one of {', '.join(MONTHS)}"
        )
    year, day = 2000 + int(match["year"]), int(match["day"])
    try:
        expiry = datetime(year, month, day, EXPIRY_HOUR_UTC, tzinfo=UTC)
    except ValueError:
        raise InstrumentNameError(
            name, f"no such date: day {day} of {match['month']} {year}"
        ) from None
    whole, _, fraction = match["strike"].partition("d")
    if len(fraction) > MAX_STRIKE_DECIMALS:
        raise InstrumentNameError(
            name, f"strike has more than {MAX_STRIKE_DECIMALS} decimal places"
        )
    strike = Decimal(f"{whole}.{fraction}" if fraction else whole)
    if strike == 0:
        raise InstrumentNameError(name, "strike is zero")
    if strike >= _STRIKE_LIMIT:
        raise InstrumentNameError(name, "strike does not fit DECIMAL(38, 8)")
    option_type: Literal["C", "P"] = "C" if match["type"] == "C" else "P"
    return OptionInstrument(match["currency"], expiry, strike, option_type)


def _why_not_an_option(name: str) -> str:
    if _PERPETUAL_RE.fullmatch(name):
        return "a perpetual, not an option"
    if _FUTURE_RE.fullmatch(name):
        return "a future (no strike and option type), not an option"
    if name.count("-") != 3:
        return (
            f"expected 4 dash-separated parts CURRENCY-DMONYY-STRIKE-C|P, got {name.count('-') + 1}"
        )
    return "does not match CURRENCY-DMONYY-STRIKE-C|P (e.g. BTC-1JAN22-47000-C)"
