"""The instrument universe: which instruments each venue's raw assets pull.

The universe is configuration, not a partition dimension (see ARCHITECTURE.md): it lives in
``mkt_platform/instruments.yaml`` (or the file named by env ``MKT_INSTRUMENTS_FILE``), one line
per instrument.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

DEFAULT_INSTRUMENTS_FILE = Path(__file__).resolve().parents[1] / "instruments.yaml"

Market = Literal["spot", "perp", "option"]
#: The venues the platform has clients and raw assets for.
VENUES = ("binance", "hyperliquid", "deribit")


@dataclass(frozen=True)
class Instrument:
    """One instrument of the universe.

    Attributes:
        venue: exchange name, e.g. ``binance``.
        instrument: the instrument as the venue spells it, e.g. ``BTCUSDT``.
        base: base currency, e.g. ``BTC``.
        quote: quote currency (prices are in it), e.g. ``USDT``.
        market: ``spot``, ``perp`` or ``option``.
        intervals: candle intervals to collect, in the venue's notation (``1h``, ``1m``).
        funding: collect funding rates (perps only; default true for perps).
    """

    venue: str
    instrument: str
    base: str
    quote: str
    market: Market
    intervals: tuple[str, ...]
    funding: bool = False


class InstrumentsFileError(ValueError):
    """The instrument universe file is malformed."""


def load_instruments(path: Path | None = None) -> tuple[Instrument, ...]:
    """Read the instrument universe.

    Args:
        path: the YAML file; default env ``MKT_INSTRUMENTS_FILE`` or the packaged file.

    Raises:
        InstrumentsFileError: an entry misses a key or has a bad market type, naming the entry.
    """
    path = path or Path(os.environ.get("MKT_INSTRUMENTS_FILE", DEFAULT_INSTRUMENTS_FILE))
    entries = (yaml.safe_load(path.read_text()) or {}).get("instruments") or []
    instruments = []
    for index, entry in enumerate(entries):
        try:
            instrument = Instrument(
                venue=str(entry["venue"]),
                instrument=str(entry["instrument"]),
                base=str(entry["base"]),
                quote=str(entry["quote"]),
                market=entry["market"],
                intervals=tuple(str(i) for i in entry.get("intervals") or ()),
                funding=bool(entry.get("funding", entry.get("market") == "perp")),
            )
        except (KeyError, TypeError) as exc:
            raise InstrumentsFileError(f"{path}: entry {index} ({entry!r}) lacks {exc}") from None
        if instrument.market not in ("spot", "perp", "option"):
            raise InstrumentsFileError(
                f"{path}: entry {index} has market {instrument.market!r}, "
                "expected spot, perp or option"
            )
        if instrument.venue not in VENUES:
            raise InstrumentsFileError(
                f"{path}: entry {index} has venue {instrument.venue!r}, expected one of {VENUES}"
            )
        if any(
            (i.venue, i.instrument, i.market)
            == (instrument.venue, instrument.instrument, instrument.market)
            for i in instruments
        ):
            raise InstrumentsFileError(
                f"{path}: entry {index} repeats {instrument.venue} {instrument.instrument}"
            )
        instruments.append(instrument)
    return tuple(instruments)


def symbols_for(venue: str, market: Market, interval: str | None = None) -> tuple[str, ...]:
    """Instruments of ``venue``/``market`` (that collect ``interval``, if given), in file order."""
    return tuple(
        i.instrument
        for i in load_instruments()
        if i.venue == venue and i.market == market and (interval is None or interval in i.intervals)
    )


def instruments_for(venue: str, interval: str | None = None) -> tuple[Instrument, ...]:
    """Instruments of ``venue`` of every market type (that collect ``interval``, if given)."""
    return tuple(
        i
        for i in load_instruments()
        if i.venue == venue and (interval is None or interval in i.intervals)
    )


def funding_instruments(venue: str) -> tuple[str, ...]:
    """Perps of ``venue`` whose funding rates are collected, in file order."""
    return tuple(
        i.instrument
        for i in load_instruments()
        if i.venue == venue and i.market == "perp" and i.funding
    )
