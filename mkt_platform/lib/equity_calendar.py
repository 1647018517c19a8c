"""The NYSE trading calendar of the equity datasets (Polygon's SPY, its options, VIX), from
``exchange_calendars`` (calendar ``XNYS``): trading days, regular sessions 09:30-16:00
America/New_York, early closes (13:00) and holidays. Sessions are defined in New York time
and stored in UTC.

The Dagster partitions of the equity assets are the trading days: a weekday partition
definition in America/New_York with every weekday holiday excluded, so the UI lists (and a
backfill runs) trading days only.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg

#: The exchange whose calendar the equity datasets follow (ISO 10383 MIC of the NYSE).
CALENDAR = "XNYS"
NEW_YORK = ZoneInfo("America/New_York")
#: The first trading day the equity datasets partition.
FIRST_DAY = date(2020, 1, 2)


@dataclass(frozen=True)
class Session:
    """One NYSE regular session.

    Attributes:
        day: the trading day (its date in New York).
        open, close: the session's open and close (aware, UTC).
        is_early_close: the session closes before 16:00 New York time (13:00 on the day
            after Thanksgiving, Christmas Eve, and the eve of Independence Day).
    """

    day: date
    open: datetime
    close: datetime
    is_early_close: bool


#: exchange_calendars 4.x reads ``Series.values`` of tz-aware series, which pandas 3 deprecates
#: (a warning on every calendar built, none of our doing): silenced where the library runs.
_LIBRARY_WARNING = "Series.values returning an ndarray that drops timezone"


@contextmanager
def _quiet_library():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_LIBRARY_WARNING)
        yield


@cache
def _calendar(last_year: int):
    import exchange_calendars

    with _quiet_library():
        return exchange_calendars.get_calendar(
            CALENDAR, start=FIRST_DAY.isoformat(), end=f"{last_year}-12-31"
        )


def calendar(through: date | None = None):
    """The ``exchange_calendars`` NYSE calendar from :data:`FIRST_DAY` to the end of
    ``through``'s year (default: next year)."""
    year = (through or datetime.now(UTC).date()).year
    return _calendar(max(year, datetime.now(UTC).year + 1))


def sessions(start: date, end: date) -> list[Session]:
    """The regular sessions of the trading days ``start..end`` (inclusive), in order."""
    cal = calendar(end)
    with _quiet_library():
        schedule = cal.schedule.loc[start.isoformat() : end.isoformat()]
        early = {d.date() for d in cal.early_closes}
    return [
        Session(
            day.date(),
            row.open.to_pydatetime().astimezone(UTC),
            row.close.to_pydatetime().astimezone(UTC),
            day.date() in early,
        )
        for day, row in schedule.iterrows()
    ]


def session(day: date) -> Session | None:
    """The regular session of ``day``, or ``None`` when the NYSE is closed (a weekend or a
    holiday)."""
    found = sessions(day, day)
    return found[0] if found else None


def previous_trading_day(day: date) -> date:
    """The last NYSE trading day before ``day`` (``day`` itself need not be one)."""
    earlier = day - timedelta(days=1)
    while session(earlier) is None:
        earlier -= timedelta(days=1)
    return earlier


def next_trading_day(day: date) -> date:
    """The first NYSE trading day after ``day`` (``day`` itself need not be one)."""
    later = day + timedelta(days=1)
    while session(later) is None:
        later += timedelta(days=1)
    return later


def trading_day_window(day: date) -> tuple[datetime, datetime]:
    """The span of time that belongs to trading day ``day``: from its New York midnight to the
    next trading day's (a weekend's and a holiday's hours belong to the trading day before
    them), as aware datetimes in New York time.

    Raises:
        ValueError: ``day`` is no trading day.
    """
    if session(day) is None:
        raise ValueError(f"{day} is no NYSE trading day")
    following = next_trading_day(day)
    return (
        datetime(day.year, day.month, day.day, tzinfo=NEW_YORK),
        datetime(following.year, following.month, following.day, tzinfo=NEW_YORK),
    )


def holidays(start: date, end: date) -> list[date]:
    """The weekdays of ``start..end`` on which the NYSE does not trade (its holidays and its
    closings for an event, e.g. a national day of mourning)."""
    cal = calendar(end)
    with _quiet_library():
        trading = {s.date() for s in cal.sessions_in_range(start.isoformat(), end.isoformat())}
    return [d for d in _weekdays(start, end) if d not in trading]


def _weekdays(start: date, end: date) -> list[date]:
    days = (end - start).days + 1
    return [d for d in (start + timedelta(days=i) for i in range(days)) if d.weekday() < 5]


@cache
def _seeded_days() -> frozenset[date]:
    """The trading days of the sessions seed (:data:`SEED_PATH`), read without the library:
    what the partitions are built from when the code location loads (importing
    exchange_calendars costs about 0.5 s)."""
    seed = Path(__file__).resolve().parents[2] / SEED_PATH
    lines = seed.read_text().splitlines()[1:]
    return frozenset(date.fromisoformat(line.split(",", 1)[0]) for line in lines)


def _holidays_for_partitions(last: date) -> list[date]:
    """The weekday holidays from :data:`FIRST_DAY` to ``last``: from the seed up to its last
    day (tests hold it equal to the library), from the library beyond it."""
    seeded_through = min(last, SEED_LAST_DAY)
    found = [d for d in _weekdays(FIRST_DAY, seeded_through) if d not in _seeded_days()]
    if last > SEED_LAST_DAY:
        found += holidays(SEED_LAST_DAY + timedelta(days=1), last)
    return found


def trading_days_partitions_def() -> dg.TimeWindowPartitionsDefinition:
    """The equity assets' partitions: NYSE trading days (keys ``YYYY-MM-DD``) from
    :data:`FIRST_DAY`, a weekday schedule in America/New_York with every holiday through next
    year excluded. The latest partition is the trading day in progress (end offset 1), as for
    the crypto venues' UTC days."""
    last = date(datetime.now(UTC).year + 1, 12, 31)
    return dg.TimeWindowPartitionsDefinition(
        start=FIRST_DAY.isoformat(),
        fmt="%Y-%m-%d",
        cron_schedule="0 0 * * 1-5",
        timezone="America/New_York",
        end_offset=1,
        exclusions=[
            datetime(d.year, d.month, d.day, tzinfo=NEW_YORK)
            for d in _holidays_for_partitions(last)
        ],
    )


#: The dbt seed of the sessions (the calendar in the warehouse, for the equity marts).
SEED_PATH = "dbt_project/seeds/calendars/nyse_sessions.csv"
#: The seed's last day (regenerate it before then: ``python -m mkt_platform.lib.equity_calendar``).
SEED_LAST_DAY = date(2027, 12, 31)


def seed_rows(start: date = FIRST_DAY, end: date = SEED_LAST_DAY) -> list[str]:
    """The lines of the sessions seed: a header, then one line per trading day of
    ``start..end``: ``session_date,session_open,session_close,is_early_close`` (UTC, ISO 8601)."""
    lines = ["session_date,session_open,session_close,is_early_close"]
    for s in sessions(start, end):
        lines.append(
            f"{s.day.isoformat()},{s.open.isoformat()},{s.close.isoformat()},"
            f"{str(s.is_early_close).lower()}"
        )
    return lines


if __name__ == "__main__":  # python -m mkt_platform.lib.equity_calendar: write the seed
    target = Path(__file__).resolve().parents[2] / SEED_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(seed_rows()) + "\n")
    print(f"{target}: {len(seed_rows()) - 1} sessions")
