"""The instrument universe: which instruments each venue's raw assets pull.

The universe is configuration, not a partition dimension (see ARCHITECTURE.md): it lives in
``mkt_platform/instruments.yaml`` (or the file named by env ``MKT_INSTRUMENTS_FILE``), one line
per instrument. The file is validated against a schema (:class:`InstrumentEntry`) before
anything is pulled: an unknown key, venue, market or interval is an error naming the file,
the line and the key, never a silently smaller universe (a smaller universe would overwrite
the lake's partitions with fewer instruments).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mkt_platform import settings

Market = Literal["spot", "perp", "option"]
#: What the platform collects: per venue, the markets it has raw assets for and, per market,
#: the candle intervals those assets pull (an interval outside these has no raw asset, so a
#: line asking for it would silently collect nothing). For Deribit's option currencies the
#: intervals are the resolutions of the currency's volatility index (DVOL) candles, in
#: Deribit's notation: ``1D`` (daily, always collected) and ``3600`` (hourly, on request).
COLLECTED: dict[str, dict[str, frozenset[str]]] = {
    "binance": {"spot": frozenset({"1h", "1m"})},
    "hyperliquid": {"spot": frozenset({"1h"}), "perp": frozenset({"1h", "1m"})},
    "deribit": {"option": frozenset({"1D", "3600"})},
}
#: The venues the platform has clients and raw assets for.
VENUES = tuple(COLLECTED)


@dataclass(frozen=True)
class Instrument:
    """One instrument of the universe.

    Attributes:
        venue: exchange name, e.g. ``binance``.
        instrument: the instrument as the venue spells it, e.g. ``BTCUSDT``.
        base: base currency, e.g. ``BTC``.
        quote: quote currency (prices are in it), e.g. ``USDT``.
        market: ``spot``, ``perp`` or ``option``.
        intervals: candle intervals to collect, in the venue's notation (``1h``, ``1m``); for
            a Deribit option currency, its DVOL resolutions besides the daily one, which
            is always collected (``3600``).
        funding: collect funding rates (perps only; default true for perps).
        order_book: snapshot the order book (Binance spot only; default false).
        option_trades: collect the option trades (Deribit option currencies only; default
            true): the options marts hold one currency's (:func:`load_instruments`), and a
            currency with ``option_trades: false`` collects its DVOL alone.
    """

    venue: str
    instrument: str
    base: str
    quote: str
    market: Market
    intervals: tuple[str, ...]
    funding: bool = False
    order_book: bool = False
    option_trades: bool = False


class InstrumentEntry(BaseModel):
    """The schema of one line of the instruments file (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    venue: str
    instrument: str = Field(min_length=1)
    base: str = Field(min_length=1)
    quote: str = Field(min_length=1)
    market: Market
    intervals: list[str] = Field(default_factory=list)
    funding: bool | None = None
    order_book: bool = False
    option_trades: bool | None = None

    @field_validator("intervals", mode="before")
    @classmethod
    def _resolution_numbers_as_text(cls, value: Any) -> Any:
        """Deribit spells the hourly resolution as a number (``3600``), which YAML reads as
        an integer: it is the text ``"3600"`` here (any other type is still an error)."""
        if isinstance(value, list):
            return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return value


class InstrumentsFile(BaseModel):
    """The schema of the whole file: one key, ``instruments``, a list of entries."""

    model_config = ConfigDict(extra="forbid", strict=True)

    instruments: list[InstrumentEntry]


#: (venue, market) of the Deribit option currencies: their DVOL, and the option trades of
#: one of them (the options marts hold one currency's; see :func:`load_instruments`).
DERIBIT_OPTIONS = ("deribit", "option")


class InstrumentsFileError(ValueError):
    """The instrument universe file is malformed; the message names the file, line and key."""


def instruments_file() -> Path:
    """The instruments file in force (see :func:`settings.instruments_file`)."""
    return settings.instruments_file()


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at ``loc`` (keys and list indexes), or of the deepest
    node found on the way."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == part), None)
            if match is None:
                break
            key, node = match
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _where(path: Path, node: yaml.Node | None, loc: tuple[Any, ...]) -> str:
    line = _line_of(node, loc)
    return f"{path}, line {line}" if line else str(path)


def load_instruments(path: Path | None = None) -> tuple[Instrument, ...]:
    """Read and validate the instrument universe.

    Args:
        path: the YAML file; default :func:`instruments_file`.

    Returns:
        The instruments in file order (possibly none: an explicit ``instruments: []``).

    Raises:
        InstrumentsFileError: the file is missing or not YAML, has a key other than
            ``instruments`` (a misspelling such as ``instrument:``), or an entry with an
            unknown key, a missing key, a value of the wrong type, a venue, market or interval
            the platform does not collect, a repeated instrument, or a second Deribit
            option currency collecting option trades (the options marts hold one). The
            message names the file, the line and the key.
    """
    path = path or instruments_file()
    try:
        text = path.read_text()
    except OSError as exc:
        raise InstrumentsFileError(f"{path}: cannot read the instruments file: {exc}") from None
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise InstrumentsFileError(f"{where}: not valid YAML: {problem}") from None
    if data is None:
        raise InstrumentsFileError(f"{path}, line 1: the file is empty; expected 'instruments:'")
    try:
        parsed = InstrumentsFile.model_validate(data)
    except ValidationError as exc:
        # An unknown key says more than the missing one it was probably meant to be.
        error = min(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        loc = tuple(error["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        if error["type"] == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}"
            if len(loc) == 1:
                message += " (the file's one key is 'instruments')"
            else:
                message += f" (known keys: {', '.join(InstrumentEntry.model_fields)})"
        elif error["type"] == "missing":
            message = f"missing key {loc[-1]!r}"
        else:
            message = f"{error['msg']} (got {error.get('input')!r})"
        raise InstrumentsFileError(f"{_where(path, root, loc)}: {key}: {message}") from None
    instruments: list[Instrument] = []
    for index, entry in enumerate(parsed.instruments):
        loc: tuple[Any, ...] = ("instruments", index)

        def fail(key: str, message: str, loc: tuple[Any, ...] = loc) -> InstrumentsFileError:
            return InstrumentsFileError(
                f"{_where(path, root, (*loc, key))}: instruments.{loc[1]}.{key}: {message}"
            )

        if entry.venue not in COLLECTED:
            raise fail("venue", f"unknown venue {entry.venue!r}, expected one of {VENUES}")
        markets = COLLECTED[entry.venue]
        if entry.market not in markets:
            raise fail(
                "market",
                f"{entry.venue} has no {entry.market!r} market here, expected one of "
                f"{tuple(markets)}",
            )
        for position, interval in enumerate(entry.intervals):
            if interval not in markets[entry.market]:
                allowed = sorted(markets[entry.market]) or "none"
                raise InstrumentsFileError(
                    f"{_where(path, root, (*loc, 'intervals', position))}: "
                    f"instruments.{index}.intervals: unknown interval {interval!r} for "
                    f"{entry.venue} {entry.market} (collected: {allowed})"
                )
        if entry.funding and entry.market != "perp":
            raise fail("funding", "funding rates exist for perps only")
        if entry.order_book and (entry.venue, entry.market) != ("binance", "spot"):
            raise fail("order_book", "order-book snapshots are collected for Binance spot only")
        if entry.option_trades is not None and (entry.venue, entry.market) != DERIBIT_OPTIONS:
            raise fail("option_trades", "option trades are collected for Deribit options only")
        instrument = Instrument(
            venue=entry.venue,
            instrument=entry.instrument,
            base=entry.base,
            quote=entry.quote,
            market=entry.market,
            intervals=tuple(entry.intervals),
            funding=entry.funding if entry.funding is not None else entry.market == "perp",
            order_book=entry.order_book,
            option_trades=entry.option_trades is not False
            and (entry.venue, entry.market) == DERIBIT_OPTIONS,
        )
        if any(
            (i.venue, i.instrument, i.market)
            == (instrument.venue, instrument.instrument, instrument.market)
            for i in instruments
        ):
            raise fail("instrument", f"repeats {instrument.venue} {instrument.instrument}")
        traded = [i.instrument for i in instruments if i.option_trades]
        if instrument.option_trades and traded:
            raise fail(
                "option_trades",
                f"a second Deribit option currency collecting option trades "
                f"({instrument.instrument!r} after {traded[0]!r}): the options marts hold one "
                "currency (their rows are keyed by hour and expiry, and Deribit's trade ids are "
                "unique per currency only); 'option_trades: false' on its line collects its "
                "DVOL alone",
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


def option_trade_currencies() -> tuple[str, ...]:
    """The Deribit option currency whose option trades are collected (at most one: see
    :func:`load_instruments`), as a tuple: empty when none is."""
    return tuple(i.instrument for i in load_instruments() if i.option_trades)


#: The volatility index (DVOL) resolution every Deribit option currency collects.
DAILY_VOLATILITY_INDEX = "1D"


def volatility_index_series() -> tuple[tuple[str, str], ...]:
    """The (currency, resolution) volatility index (DVOL) series the universe collects, in
    Deribit's notation: each Deribit option currency's ``1D`` first, then its line's other
    ``intervals`` (``3600``), in file order."""
    return tuple(
        (i.instrument, resolution)
        for i in load_instruments()
        if (i.venue, i.market) == DERIBIT_OPTIONS
        for resolution in dict.fromkeys((DAILY_VOLATILITY_INDEX, *i.intervals))
    )


def order_book_symbols() -> tuple[str, ...]:
    """Binance spot symbols whose order book is snapshotted (``order_book: true``), in file
    order."""
    return tuple(i.instrument for i in load_instruments() if i.order_book)


def funding_instruments(venue: str) -> tuple[str, ...]:
    """Perps of ``venue`` whose funding rates are collected, in file order."""
    return tuple(
        i.instrument
        for i in load_instruments()
        if i.venue == venue and i.market == "perp" and i.funding
    )
