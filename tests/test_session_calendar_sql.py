"""The weekly and monthly session calendar of dbt (macros/sessions_calendar.sql), checked
against an independent Python calendar for every hour of 2022-01-01..2025-12-31.

The macros are compiled by ``dbt compile --inline`` (dbt's Python runner, one compilation
per setting) and the compiled SQL is run in DuckDB here. The reference takes the last session
weekday of each month from ``calendar.monthcalendar`` and the weekly start from weekday
arithmetic on Python dates.
"""

from __future__ import annotations

import bisect
import calendar
import itertools
import json
import os
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path

import duckdb
import pytest

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
FIRST = datetime(2022, 1, 1, tzinfo=UTC)
LAST = datetime(2025, 12, 31, 23, tzinfo=UTC)

# Every hour of the range (so daily session starts at any anchor, and the hours between
# them), the weekly and monthly session starts and the monthly session end, as epoch ms.
CALENDAR_SQL = """
select
    ts_ms,
    epoch_ms({{ weekly_session_start('ts') }}) as weekly_ms,
    epoch_ms(monthly_start) as monthly_ms,
    epoch_ms({{ monthly_session_end('monthly_start') }}) as monthly_end_ms
from (
    select ts, ts_ms, {{ monthly_session_start('ts') }} as monthly_start
    from (
        select to_timestamp(s) as ts, s * 1000 as ts_ms
        from range(FIRST_S, END_S, 3600) as t(s)
    )
)
order by ts_ms
"""
CALENDAR_SQL = CALENDAR_SQL.replace("FIRST_S", str(int(FIRST.timestamp())))
CALENDAR_SQL = CALENDAR_SQL.replace("END_S", str(int(LAST.timestamp()) + 1))

# (label, dbt vars, env MKT_WEEKLY_SESSION_WEEKDAY or None, expected ISO weekday, anchor).
# The var wins when set (what Dagster passes); without it the env name is mapped to 1..7.
SETTINGS = [
    ("fri_var_anchor_8", {"session_anchor_hour": 8, "session_weekday": 5}, "MON", 5, 8),
    ("fri_default_anchor_0", {"session_anchor_hour": 0}, None, 5, 0),
    ("mon_var_anchor_0", {"session_anchor_hour": 0, "session_weekday": 1}, None, 1, 0),
    ("mon_env_anchor_8", {"session_anchor_hour": 8}, " mon", 1, 8),
]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The compiled calendar SQL of each setting (label -> SQL), and whether a bad weekday
    name compiles, with dbt's log (``bad_name``).

    dbt runs in this process: the project is parsed once and the manifest reused for each
    compilation (vars and env only matter when the macros are rendered), which takes a few
    seconds instead of a dbt process per setting."""
    from dbt.cli.main import dbtRunner

    tmp = tmp_path_factory.mktemp("session_calendar")
    common = [
        "--project-dir", str(DBT_PROJECT_DIR),
        "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(tmp / "target"),
        "--log-path", str(tmp / "logs"),
    ]  # fmt: skip
    out: dict[str, object] = {}
    with pytest.MonkeyPatch.context() as env:
        for name in [n for n in os.environ if n.startswith("MKT_")]:
            env.delenv(name)
        env.setenv("MKT_DATA_DIR", str(tmp / "data"))  # dbt opens the warehouse to compile
        (tmp / "data").mkdir()
        parsed = dbtRunner().invoke(["--quiet", "parse", *common])
        assert parsed.success, parsed.exception

        messages: list[str] = []

        def compile_inline(variables: dict, env_weekday: str | None):
            if env_weekday is None:
                env.delenv("MKT_WEEKLY_SESSION_WEEKDAY", raising=False)
            else:
                env.setenv("MKT_WEEKLY_SESSION_WEEKDAY", env_weekday)
            runner = dbtRunner(
                manifest=parsed.result, callbacks=[lambda event: messages.append(event.info.msg)]
            )
            args = ["--quiet", "compile", *common, "--vars", json.dumps(variables)]
            return runner.invoke([*args, "--inline", CALENDAR_SQL])

        for label, variables, env_weekday, _, _ in SETTINGS:
            result = compile_inline(variables, env_weekday)
            assert result.success, f"{label}: {result.exception}"
            out[label] = result.result.results[0].node.compiled_code
        messages.clear()
        bad = compile_inline({"session_anchor_hour": 8}, "FRIDAY")
        out["bad_name"] = (bad.success, "\n".join(str(m) for m in messages))
    return out


def _last_weekday_of_month(year: int, month: int, weekday: int) -> date:
    """Last ISO ``weekday`` of a month, read off the month's calendar (weeks from Monday)."""
    day = max(week[weekday - 1] for week in calendar.monthcalendar(year, month))
    return date(year, month, day)


@cache
def _expected(weekday: int, anchor: int) -> list[tuple[int, int, int, int]]:
    """(ts, weekly start, monthly start, monthly end) in epoch ms for every hour of the range."""
    monthly_days = [
        _last_weekday_of_month(year, month, weekday)
        for year in range(FIRST.year - 1, LAST.year + 2)
        for month in range(1, 13)
    ]

    def at_anchor(day: date) -> int:
        moment = datetime(day.year, day.month, day.day, anchor, tzinfo=UTC)
        return int(moment.timestamp()) * 1000

    rows = []
    ts = FIRST
    while ts <= LAST:
        # the UTC day whose anchor hour is the latest at or before ts
        day = (ts - timedelta(hours=anchor)).date()
        weekly = day - timedelta(days=(day.isoweekday() - weekday) % 7)
        i = bisect.bisect_right(monthly_days, day) - 1
        start, end = monthly_days[i], monthly_days[i + 1]
        assert (end - start).days in (28, 35)
        rows.append(
            (int(ts.timestamp()) * 1000, at_anchor(weekly), at_anchor(start), at_anchor(end))
        )
        ts += timedelta(hours=1)
    return rows


@pytest.mark.parametrize("time_zone", ["UTC", "America/New_York"])
@pytest.mark.parametrize(("label", "weekday", "anchor"), [(s[0], s[3], s[4]) for s in SETTINGS])
def test_calendar_macros_match_python(compiled, label, weekday, anchor, time_zone):
    """Weekly start, monthly start and monthly end agree with Python for every hour, whatever
    the connection's TimeZone (the calendar is cut in UTC)."""
    with duckdb.connect() as con:
        con.execute(f"set TimeZone = '{time_zone}'")
        actual = con.execute(compiled[label]).fetchall()
    expected = _expected(weekday, anchor)
    assert len(actual) == len(expected) == 35_064  # 1461 days
    mismatches = [(a, e) for a, e in zip(actual, expected, strict=True) if a != e]
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[0]}"


def test_reference_calendar_spot_checks():
    """The reference itself, on dates checked by hand: the last Fridays of Dec 2022 and
    Jan-Apr 2023, and the 5-week session 2023-02-24 -> 2023-03-31."""
    fridays = [_last_weekday_of_month(2022, 12, 5)] + [
        _last_weekday_of_month(2023, month, 5) for month in (1, 2, 3, 4)
    ]
    assert fridays == [
        date(2022, 12, 30), date(2023, 1, 27), date(2023, 2, 24), date(2023, 3, 31),
        date(2023, 4, 28),
    ]  # fmt: skip
    assert [(b - a).days for a, b in itertools.pairwise(fridays)] == [28, 28, 35, 28]


def test_bad_weekday_name_fails_compilation(compiled):
    """MKT_WEEKLY_SESSION_WEEKDAY must be a name MON..SUN, as mkt_platform.settings requires."""
    success, log = compiled["bad_name"]
    assert not success
    assert "MKT_WEEKLY_SESSION_WEEKDAY must be one of MON, TUE" in log
    assert "got 'FRIDAY'" in log
