"""Polygon's SPY minute bars on the NYSE trading calendar (issue 18, items 1, 2, 3 and 6, the
first part): the calendar, the client, the replay of the recordings and the raw asset
``polygon_spy_aggs_1m``.

Data (SOURCES.md section 13): Polygon's SPY minute bars of 2025-08-29 (830 bars, 04:00-19:59
New York time, saved with naive New York times) and of 63 trading days 2024-02-20..05-17
(49,720 bars, tz-aware New York times), served by the replay in Polygon's JSON envelope with
``next_url`` paging; the ``/v1/marketstatus/upcoming`` mock of ``polygon-io/client-python``
(the real 2022 holidays and Thanksgiving's early close). Expected figures are read here from
those files with ``csv`` and ``Decimal``.
"""

from __future__ import annotations

import csv
import json
import secrets
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import exchange_calendars
import pyarrow.parquet as pq
import pytest

from mkt_platform.lib import equity_calendar, lake
from mkt_platform.replay.server import ReplayServer, Response
from tests.conftest import SHARED_DATA

POLYGON = SHARED_DATA / "polygon"
NEW_YORK = ZoneInfo("America/New_York")
DAY_2025 = "2025-08-29"
FILE_2025 = POLYGON / "raftroch1_polygon_SPY_1min_2025-08-29.csv"
FILE_2024 = POLYGON / "leoxu2023_SPY_1min_2024-02-20_to_2024-05-17.csv"


def recorded_bars(path: Path) -> dict[str, list[dict]]:
    """The recording's bars per New York date: ``t`` (UTC ms) and the values as Decimal."""
    days: dict[str, list[dict]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            moment = datetime.fromisoformat(row.get("timestamp") or row["datetime"])
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=NEW_YORK)
            bar = {k: Decimal(row[k]) for k in ("open", "high", "low", "close", "volume", "vwap")}
            bar["t"] = int(moment.timestamp() * 1000)
            bar["transactions"] = int(float(row["transactions"]))
            days.setdefault(moment.astimezone(NEW_YORK).date().isoformat(), []).append(bar)
    return days


def test_the_trading_days_are_the_librarys_and_polygons_holidays() -> None:
    """The partitions of 2020-2026 are exactly exchange_calendars' XNYS sessions; Polygon's
    upcoming-holidays answer of 2022 agrees on every NYSE holiday (no partition) and on
    Thanksgiving Friday's early close (its open and close times)."""
    xnys = exchange_calendars.get_calendar("XNYS", start="2020-01-01", end="2026-12-31")
    library = [d.date().isoformat() for d in xnys.sessions_in_range("2020-01-02", "2026-12-04")]
    partitions = equity_calendar.trading_days_partitions_def().get_partition_keys(
        current_time=datetime(2026, 12, 5, 12, tzinfo=NEW_YORK)
    )
    assert [k for k in partitions if k <= "2026-12-04"] == library
    assert len(library) > 1700

    upcoming = json.loads((POLYGON / "mock_v1_marketstatus_upcoming_2022-05.json").read_text())
    nyse = [u for u in upcoming if u["exchange"] == "NYSE"]
    closed = [date.fromisoformat(u["date"]) for u in nyse if u["status"] == "closed"]
    assert len(closed) == 6
    assert set(closed) <= set(equity_calendar.holidays(date(2022, 5, 1), date(2022, 12, 31)))
    assert not {d.isoformat() for d in closed} & set(partitions)
    (early,) = [u for u in nyse if u["status"] == "early-close"]
    session = equity_calendar.session(date.fromisoformat(early["date"]))
    assert session.is_early_close
    assert session.open.isoformat().replace("+00:00", ".000Z") == early["open"]
    assert session.close.isoformat().replace("+00:00", ".000Z") == early["close"]
    regular = equity_calendar.session(date(2022, 11, 23))
    assert not regular.is_early_close and regular.close.hour == 21  # 16:00 EST


@pytest.fixture
def polygon(tmp_path: Path, monkeypatch) -> Iterator[tuple[ReplayServer, str]]:
    """The replay serving Polygon, the platform pointed at it, and a fresh API key (what a
    test greps for afterwards)."""
    key = f"pk-{secrets.token_hex(16)}"
    monkeypatch.setenv("MKT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("POLYGON_API_KEY", key)
    with ReplayServer(SHARED_DATA) as server:
        monkeypatch.setenv("POLYGON_BASE_URL", server.base_url("polygon"))
        yield server, key


def pull(
    instance, partition_key: str | None = None, partition_range: tuple[str, str] | None = None
):
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    from mkt_platform.definitions import build_definitions
    from mkt_platform.defs.polygon.datasets import SPY_AGGS_1M

    defs = build_definitions()
    tags = {}
    if partition_range:
        tags = {
            ASSET_PARTITION_RANGE_START_TAG: partition_range[0],
            ASSET_PARTITION_RANGE_END_TAG: partition_range[1],
        }
    return dg.materialize(
        [defs.get_assets_def(SPY_AGGS_1M.key)],
        partition_key=partition_key,
        resources=defs.resources,
        instance=instance,
        tags=tags,
        raise_on_error=False,
    )


def build_sessions(instance, first: str, last: str):
    """One ranged run of the equity marts (dbt) over the trading days first..last."""
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    from mkt_platform.definitions import build_definitions

    defs = build_definitions()
    return dg.materialize(
        list(defs.assets),
        selection=dg.AssetSelection.assets("equity_session_ohlc_daily", "nyse_sessions"),
        resources=defs.resources,
        instance=instance,
        tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
        raise_on_error=False,
    )


def regular_hours(day: str, bars: list[dict]) -> list[dict]:
    """The bars of ``day`` from 09:30 to before 16:00 New York time, written here."""
    opens = datetime.fromisoformat(f"{day}T09:30").replace(tzinfo=NEW_YORK).timestamp() * 1000
    closes = datetime.fromisoformat(f"{day}T16:00").replace(tzinfo=NEW_YORK).timestamp() * 1000
    return [b for b in bars if opens <= b["t"] < closes]


def lake_day(day: str) -> list[dict]:
    return pq.read_table(lake.raw_partition_path("polygon", "spy_aggs_1m", day)).to_pylist()


def assert_day_equals_recording(day: str, bars: list[dict]) -> None:
    rows = lake_day(day)
    assert [int(r["bar_time"].timestamp() * 1000) for r in rows] == [b["t"] for b in bars]
    for row, bar in zip(rows, bars, strict=True):
        assert row["ticker"] == "SPY"
        assert {k: row[k] for k in ("open", "high", "low", "close", "volume", "vwap")} == {
            k: bar[k] for k in ("open", "high", "low", "close", "volume", "vwap")
        }
        assert row["transactions"] == bar["transactions"]


@pytest.mark.slow
def test_spy_days_land_bar_for_bar_and_the_key_is_nowhere(polygon, instance, caplog) -> None:
    """2025-08-29, then the 63 recorded days of 2024 in one ranged run (49,720 bars: the
    client asks 50,000 a page, so one page, and no next_url): each day's file equals the
    recording bar for bar, extended hours kept; the metadata counts the regular-session
    bars; dbt's regular sessions equal an aggregation written here; the API key is in no
    log line, no event, no lake file and no warehouse."""
    server, key = polygon
    result = pull(instance, DAY_2025)
    assert result.success
    recorded = recorded_bars(FILE_2025)
    assert_day_equals_recording(DAY_2025, recorded[DAY_2025])
    (materialization,) = result.asset_materializations_for_node("polygon_spy_aggs_1m")
    assert materialization.metadata["bars"].value == 830
    assert materialization.metadata["extended_hours_bars"].value == 830 - 390
    assert materialization.metadata["is_early_close"].value is False

    days_2024 = recorded_bars(FILE_2024)
    assert len(days_2024) == 63
    first, last = min(days_2024), max(days_2024)
    ranged = pull(instance, partition_range=(first, last))
    assert ranged.success
    for day, bars in days_2024.items():
        assert_day_equals_recording(day, bars)
    requests = [r for r in server.requests("polygon") if "/SPY/" in r.path]
    assert len(requests) == 2  # one page for 2025-08-29, one for the 2024 range
    per_day = {
        m.partition: m.metadata["bars"].value - m.metadata["extended_hours_bars"].value
        for m in ranged.asset_materializations_for_node("polygon_spy_aggs_1m")
    }
    assert per_day == dict.fromkeys(days_2024, 390)  # every day has its 390 session bars

    # The regular sessions, built by dbt over both recordings in one ranged run, equal the
    # 09:30-16:00 New York bars aggregated here (none of these days closes early).
    built = build_sessions(instance, first, DAY_2025)
    assert built.success
    with duckdb.connect(str(lake.lake_root().parent / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute("select * from marts.equity_session_ohlc_daily order by session_date")
        names = [c[0] for c in cursor.description]
        mart = {
            r["session_date"].isoformat(): r
            for r in (dict(zip(names, row, strict=True)) for row in cursor.fetchall())
        }
    expected = {**days_2024, DAY_2025: recorded[DAY_2025]}
    assert sorted(mart) == sorted(expected)
    for day, bars in expected.items():
        row, session = mart[day], regular_hours(day, bars)
        assert len(session) == row["bar_count"] == 390
        assert not row["is_early_close"]
        assert row["session_start"].astimezone(NEW_YORK).strftime("%H:%M") == "09:30"
        assert row["session_end"].astimezone(NEW_YORK).strftime("%H:%M") == "16:00"
        assert (row["open"], row["close"]) == (session[0]["open"], session[-1]["close"])
        assert row["high"] == max(b["high"] for b in session)
        assert row["low"] == min(b["low"] for b in session)
        assert row["volume"] == sum(b["volume"] for b in session)
        vwap = sum(b["vwap"] * b["volume"] for b in session) / sum(b["volume"] for b in session)
        assert row["vwap"] == pytest.approx(float(vwap), rel=1e-12)
        # the extended hours are in raw, not in the session
        assert len(lake_day(day)) == len(bars) > len(session)

    text = caplog.text + json.dumps(
        [str(e) for e in instance.all_logs(result.run_id) + instance.all_logs(ranged.run_id)]
    )
    assert key not in text
    files = [p for p in Path(lake.lake_root()).parent.rglob("*") if p.is_file()]
    assert any(p.name == "warehouse.duckdb" for p in files)
    for path in files:  # the lake, the quarantine, the warehouse, dbt's run folders
        assert key.encode() not in path.read_bytes(), path


def test_a_429_with_retry_after_is_retried(polygon, instance) -> None:
    server, _ = polygon
    body = json.dumps({"status": "ERROR", "error": "You've exceeded the maximum requests"})
    server.inject(
        "polygon",
        [Response(429, {"Content-Type": "application/json", "Retry-After": "1"}, body.encode())],
    )
    result = pull(instance, DAY_2025)
    assert result.success
    assert len(lake_day(DAY_2025)) == 830
    assert len(server.requests("polygon")) == 2


@pytest.mark.parametrize(
    ("lie", "field"),
    [
        (
            lambda p: {
                **p,
                "results": [{k: v for k, v in b.items() if k != "c"} for b in p["results"]],
            },
            "c",
        ),
        (lambda p: {**p, "results": [{**b, "o": str(b["o"])} for b in p["results"]]}, "o"),
        (lambda p: {**p, "ticker": "QQQ"}, "ticker"),
        (lambda p: {**p, "next_url": "https://elsewhere.example/v2/aggs?cursor=1"}, "next_url"),
    ],
    ids=["a bar without close", "a price as a string", "another ticker", "paging elsewhere"],
)
def test_a_malformed_answer_fails_naming_endpoint_ticker_and_field(
    polygon, instance, lie, field
) -> None:
    server, key = polygon
    server.mutate("polygon", lambda request, payload: lie(payload))
    result = pull(instance, DAY_2025)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert "/v2/aggs/ticker/SPY/range/1/minute" in message and "ticker=SPY" in message
    assert field in message and key not in message, message
    assert not lake.raw_partition_path("polygon", "spy_aggs_1m", DAY_2025).exists()


def test_without_a_key_the_run_fails_saying_so_and_asks_nothing(polygon, instance, monkeypatch):
    server, _ = polygon
    monkeypatch.delenv("POLYGON_API_KEY")
    result = pull(instance, DAY_2025)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "POLYGON_API_KEY is not set" in failure.step_failure_data.user_failure_data.description
    assert server.requests("polygon") == []


def test_next_url_pages_through_a_day_in_order(polygon) -> None:
    """Asked 300 bars a page, the client follows Polygon's next_url (with the key in the
    header each time, never in the URL) and gets the day whole, in order."""
    from mkt_platform.defs.polygon.resources import PolygonClient

    server, key = polygon
    client = PolygonClient(base_url=server.base_url("polygon"), api_key=key)
    table = client.fetch_aggregates("SPY", 1, "minute", DAY_2025, DAY_2025, limit=300)
    recorded = recorded_bars(FILE_2025)[DAY_2025]
    assert [int(t.timestamp() * 1000) for t in table["bar_time"].to_pylist()] == [
        b["t"] for b in recorded
    ]
    requests = server.requests("polygon")
    assert len(requests) == 3  # 300 + 300 + 230
    assert [r.query.get("cursor") for r in requests] == [None, ["300"], ["600"]]
    assert not [r for r in requests if key in json.dumps(r.query)]


def test_the_calendar_seed_is_the_librarys() -> None:
    """The dbt seed of the sessions (the calendar in the warehouse) is what the library says
    now, line for line: regenerate it with ``python -m mkt_platform.lib.equity_calendar``."""
    seed = Path(__file__).resolve().parents[1] / equity_calendar.SEED_PATH
    assert seed.read_text().splitlines() == equity_calendar.seed_rows()
    rows = seed.read_text().splitlines()[1:]
    assert rows[0].startswith("2020-01-02,2020-01-02T14:30:00+00:00,2020-01-02T21:00:00+00:00")
    early = [r.split(",")[0] for r in rows if r.endswith(",true")]
    assert "2022-11-25" in early and "2024-07-03" in early and "2025-12-24" in early
