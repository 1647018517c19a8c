"""Missing candles of a partition, as ranges of open times (the venues' gap reports).

A range is written ``HH:MM`` for one missing candle and ``HH:MM-HH:MM`` (first and last
missing open time, inclusive, UTC) for a run, e.g. Binance's halt of 2023-03-24 in 1m klines
is ``12:40-13:59``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _hhmm(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M")


def missing_ranges(
    opens: set[int], start_ms: int, end_ms: int, interval_ms: int
) -> list[tuple[int, int]]:
    """Runs of missing candles among the open times ``start_ms, start_ms + interval, ... <
    end_ms``, as ``(first missing open, last missing open)`` pairs in UTC milliseconds."""
    ranges: list[tuple[int, int]] = []
    for t in range(start_ms, end_ms, interval_ms):
        if t in opens:
            continue
        if ranges and ranges[-1][1] == t - interval_ms:
            ranges[-1] = (ranges[-1][0], t)
        else:
            ranges.append((t, t))
    return ranges


def format_range(first_ms: int, last_ms: int) -> str:
    """``HH:MM`` for one missing candle, ``HH:MM-HH:MM`` (open times, inclusive) for a run."""
    return _hhmm(first_ms) if first_ms == last_ms else f"{_hhmm(first_ms)}-{_hhmm(last_ms)}"


def parse_range(day_start: datetime, text: str) -> tuple[int, int]:
    """Inverse of :func:`format_range` for a range of the day starting at ``day_start``."""
    first, _, last = text.partition("-")

    def at(hhmm: str) -> int:
        hours, minutes = hhmm.split(":")
        return _ms(day_start + timedelta(hours=int(hours), minutes=int(minutes)))

    return at(first), at(last or first)
