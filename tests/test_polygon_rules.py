"""VIX, news, market status, and the replaced system's operational rules on the Polygon
datasets (issue 18, items 1, 3, 4, 5 and 6): ``polygon_vix_aggs_1m`` from the replay's SYNTHETIC ``I:VIX`` bars (no recording
exists, SOURCES.md section 13), labelled as such in the lake and the materializations; late
data of a closed trading day rejected by default and reported, accepted by the setting; an
alert when a partition's write is slow.

Data: SPY's recorded minute bars of 2025-08-29 (``raftroch1_polygon_SPY_1min_2025-08-29.csv``);
the replay's SYNTHETIC ``I:VIX`` bars and SPY news of that day; polygon-io/client-python's
recorded mocks (``mock_v2_reference_news_ticker-NFLX.json``,
``mock_v1_marketstatus_now_2022-04-28.json``, ``mock_v1_marketstatus_upcoming_2022-05.json``).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pyarrow.parquet as pq
import pytest

from mkt_platform.lib import lake
from tests.test_alerts import receiver as receiver  # the webhook receiver fixture
from tests.test_polygon import (
    DAY_2025,
    FILE_2025,
    NEW_YORK,
    POLYGON,
    recorded_bars,
    regular_hours,
)
from tests.test_polygon import polygon as polygon  # the fixture
from tests.test_polygon_options import materialize, warehouse_rows


def test_vix_is_synthetic_said_so_and_sessioned(polygon, instance) -> None:
    """The replay's I:VIX bars of 2025-08-29 (09:30 to 16:15 New York time, no volume) land
    with ``synthetic`` in the Parquet metadata, ``SYNTHETIC`` in the materialization and a
    WARNING in the run's log; VIX's regular session (09:30-16:00) in
    ``equity_session_ohlc_daily`` equals its bars aggregated here, beside SPY's."""
    result = materialize(instance, "polygon_spy_aggs_1m", "polygon_vix_aggs_1m")
    assert result.success
    path = lake.raw_partition_path("polygon", "vix_aggs_1m", DAY_2025)
    table = pq.read_table(path)
    assert b"SYNTHETIC" in table.schema.metadata[b"synthetic"].upper()
    rows = table.to_pylist()
    first = datetime(2025, 8, 29, 9, 30, tzinfo=NEW_YORK)
    assert [r["bar_time"] for r in rows] == [
        (first + timedelta(minutes=i)).astimezone(UTC) for i in range(405)
    ]
    assert {r["ticker"] for r in rows} == {"I:VIX"}
    assert all(r["volume"] is None and r["vwap"] is None for r in rows)
    (vix,) = result.asset_materializations_for_node("polygon_vix_aggs_1m")
    assert "SYNTHETIC" in vix.metadata["SYNTHETIC"].value.upper()
    (spy,) = result.asset_materializations_for_node("polygon_spy_aggs_1m")
    assert "SYNTHETIC" not in spy.metadata and b"synthetic" not in (
        pq.read_schema(lake.raw_partition_path("polygon", "spy_aggs_1m", DAY_2025)).metadata
    )
    assert any(
        e.step_key == "polygon_vix_aggs_1m" and "SYNTHETIC" in (e.user_message or "")
        for e in instance.all_logs(result.run_id)
        if e.level >= logging.WARNING
    )

    built = materialize(
        instance, "nyse_sessions", "equity_session_ohlc_daily", "equity_consolidated_1m"
    )
    assert built.success
    sessions = {
        r["ticker"]: r for r in warehouse_rows("select * from marts.equity_session_ohlc_daily")
    }
    assert set(sessions) == {"SPY", "I:VIX"}
    session = [r for r in rows if r["bar_time"] < datetime(2025, 8, 29, 20, tzinfo=UTC)]
    row = sessions["I:VIX"]
    assert row["bar_count"] == len(session) == 390
    assert (row["open"], row["close"]) == (session[0]["open"], session[-1]["close"])
    assert row["high"] == max(r["high"] for r in session)
    assert row["low"] == min(r["low"] for r in session)
    assert row["volume"] is None and row["vwap"] is None
    consolidated = warehouse_rows("select bar_time, vix_close from marts.equity_consolidated_1m")
    assert len(consolidated) == 390  # no tracked option: one row a minute
    by_minute = {r["bar_time"]: r["close"] for r in session}
    assert {r["bar_time"]: r["vix_close"] for r in consolidated} == by_minute


def test_late_bars_of_a_closed_day_are_rejected_then_accepted(
    polygon, instance, monkeypatch, receiver
) -> None:
    """2025-08-29 is a closed trading day. A re-pull in which Polygon changed one bar's close
    is late data: by default the day stays as first written, the materialization counts one
    late bar and a warning alert reaches the webhook; with MKT_POLYGON_LATE_DATA=accept the
    re-pull rewrites the day. A re-pull that changed nothing is no late data; one from which
    a bar was withdrawn is late data too."""
    server, key = polygon
    monkeypatch.setenv("MKT_ALERT_WEBHOOK_URL", receiver.url)
    assert materialize(instance, "polygon_spy_aggs_1m").success
    path = lake.raw_partition_path("polygon", "spy_aggs_1m", DAY_2025)
    before = path.read_bytes()
    same = materialize(instance, "polygon_spy_aggs_1m")
    assert same.success and receiver.requests == []
    (unchanged,) = same.asset_materializations_for_node("polygon_spy_aggs_1m")
    assert unchanged.metadata["late_bars"].value == 0

    opening = regular_hours(DAY_2025, recorded_bars(FILE_2025)[DAY_2025])[0]

    def late(request, payload):
        for bar in payload.get("results", []):
            if bar["t"] == opening["t"]:
                bar["c"] = round(bar["c"] + 0.01, 4)
        return payload

    server.mutate("polygon", late)
    rejected = materialize(instance, "polygon_spy_aggs_1m")
    assert rejected.success
    assert path.read_bytes() == before
    (materialization,) = rejected.asset_materializations_for_node("polygon_spy_aggs_1m")
    assert materialization.metadata["late_bars"].value == 1
    assert materialization.metadata["late_data"].value == "rejected"
    (alert,) = [json.loads(r.body) for r in receiver.requests]
    assert (alert["kind"], alert["severity"]) == ("late_data", "warning")
    assert alert["details"] == {"partition": DAY_2025, "late_bars": 1, "policy": "reject"}
    assert key not in json.dumps(alert)

    monkeypatch.setenv("MKT_POLYGON_LATE_DATA", "accept")
    assert materialize(instance, "polygon_spy_aggs_1m").success
    rows = pq.read_table(path).to_pylist()
    (bar,) = [r for r in rows if int(r["bar_time"].timestamp() * 1000) == opening["t"]]
    assert bar["close"] == opening["close"] + Decimal("0.01")
    assert len(receiver.requests) == 2

    # A re-pull from which Polygon withdrew that bar is late data too: one bar, rejected.
    monkeypatch.setenv("MKT_POLYGON_LATE_DATA", "reject")
    accepted = path.read_bytes()

    def withdrawn(request, payload):
        payload["results"] = [b for b in payload.get("results", []) if b["t"] != opening["t"]]
        return payload

    server.mutate("polygon", withdrawn)
    kept = materialize(instance, "polygon_spy_aggs_1m")
    assert kept.success and path.read_bytes() == accepted
    (materialization,) = kept.asset_materializations_for_node("polygon_spy_aggs_1m")
    assert materialization.metadata["late_bars"].value == 1
    assert materialization.metadata["late_data"].value == "rejected"


def test_a_slow_write_is_alerted(polygon, instance, monkeypatch, receiver) -> None:
    """A disk that takes 1.2 s to write a partition, against MKT_SLOW_WRITE_SECONDS=1: the
    write completes, and one slow-write alert names the partition and the seconds."""
    monkeypatch.setenv("MKT_ALERT_WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("MKT_SLOW_WRITE_SECONDS", "1")
    import time

    write = lake.write_parquet_atomic

    def slow(table, path):
        time.sleep(1.2)
        return write(table, path)

    monkeypatch.setattr(lake, "write_parquet_atomic", slow)
    result = materialize(instance, "polygon_spy_aggs_1m")
    assert result.success
    assert (
        pq.read_table(lake.raw_partition_path("polygon", "spy_aggs_1m", DAY_2025)).num_rows == 830
    )
    (alert,) = [json.loads(r.body) for r in receiver.requests]
    assert alert["kind"] == "slow_write" and alert["details"]["partition"] == DAY_2025
    assert alert["details"]["seconds"] >= 1.2 and alert["details"]["limit_seconds"] == 1


def test_news_per_session_and_its_sentiment(polygon, instance) -> None:
    """SPY's news of trading day 2025-08-29 (a Friday before Labor Day: its window runs to
    Tuesday's New York midnight, so the weekend's and Monday's news count for it) lands as
    the replay sent it (SYNTHETIC, and labelled so); ``equity_news_session_daily`` counts the
    articles and sentiments written here from that answer."""
    server, key = polygon
    result = materialize(instance, "polygon_news")
    assert result.success
    (request,) = [r for r in server.requests("polygon") if r.path == "/v2/reference/news"]
    assert request.query["published_utc.gte"] == ["2025-08-29T04:00:00Z"]
    assert request.query["published_utc.lt"] == ["2025-09-02T04:00:00Z"]
    sent = httpx.get(
        server.base_url("polygon") + "/v2/reference/news",
        params={k: v[-1] for k, v in request.query.items()},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert "SYNTHETIC" in sent.headers["X-Replay-Synthetic"]
    articles = sent.json()["results"]
    days = {a["published_utc"][:10] for a in articles}
    assert {"2025-08-30", "2025-08-31", "2025-09-01"} & days  # the weekend and Labor Day
    table = pq.read_table(lake.raw_partition_path("polygon", "news", DAY_2025))
    assert b"SYNTHETIC" in table.schema.metadata[b"synthetic"]
    rows = table.to_pylist()
    assert [r["id"] for r in rows] == [a["id"] for a in articles]
    for row, article in zip(rows, articles, strict=True):
        (insight,) = [i for i in article["insights"] if i["ticker"] == "SPY"]
        assert row["sentiment"] == insight["sentiment"]
        assert row["publisher_name"] == article["publisher"]["name"]
        assert row["tickers"] == ",".join(article["tickers"])
        assert row["published_utc"] == datetime.fromisoformat(article["published_utc"])
    (materialization,) = result.asset_materializations_for_node("polygon_news")
    assert "SYNTHETIC" in materialization.metadata["SYNTHETIC"].value

    assert materialize(instance, "nyse_sessions", "equity_news_session_daily").success
    (row,) = warehouse_rows("select * from marts.equity_news_session_daily")
    sentiments = [a["insights"][0]["sentiment"] for a in articles]
    positive, negative = sentiments.count("positive"), sentiments.count("negative")
    assert (row["ticker"], row["session_date"].isoformat()) == ("SPY", DAY_2025)
    assert row["article_count"] == row["with_sentiment"] == len(articles)
    assert (row["positive_count"], row["neutral_count"], row["negative_count"]) == (
        positive,
        sentiments.count("neutral"),
        negative,
    )
    assert row["sentiment_score"] == pytest.approx((positive - negative) / len(articles))


def test_recorded_news_market_status_and_holidays_through_the_client(polygon) -> None:
    """The client reads polygon-io's recorded mocks through the replay: the NFLX article of
    2022-04-28 (no insights: no sentiment), the market status of 2022-04-28 16:48 New York
    time (extended hours, as the NYSE calendar says at that moment), and the upcoming holidays
    of May 2022, which agree with the calendar on every NYSE holiday and early close."""
    from mkt_platform.defs.polygon.resources import PolygonClient
    from mkt_platform.lib import equity_calendar

    server, key = polygon
    client = PolygonClient(base_url=server.base_url("polygon"), api_key=key)
    news = client.fetch_news(
        "NFLX", datetime(2022, 4, 28, 4, tzinfo=UTC), datetime(2022, 4, 29, 4, tzinfo=UTC)
    ).to_pylist()
    recorded = json.loads((POLYGON / "mock_v2_reference_news_ticker-NFLX.json").read_text())
    (article,) = recorded["results"]
    assert [n["id"] for n in news] == [article["id"]]
    assert news[0]["title"] == article["title"] and news[0]["sentiment"] is None

    status = client.fetch_market_status()
    moment = datetime.fromisoformat(status["serverTime"])
    session = equity_calendar.session(moment.date())
    assert status["market"] == "extended-hours" and status["exchanges"]["nyse"] == "extended-hours"
    assert session.close <= moment < moment.replace(hour=20, minute=0, second=0)

    upcoming = [u for u in client.fetch_upcoming_holidays() if u["exchange"] == "NYSE"]
    holidays = set(equity_calendar.holidays(date(2022, 5, 1), date(2022, 12, 31)))
    for entry in upcoming:
        day = date.fromisoformat(entry["date"])
        if entry["status"] == "closed":
            assert day in holidays and equity_calendar.session(day) is None, entry
        else:
            early = equity_calendar.session(day)
            assert early.is_early_close and early.close == datetime.fromisoformat(entry["close"])


@pytest.mark.parametrize(
    ("lie", "field"),
    [
        (lambda a: {**a, "insights": [{**a["insights"][0], "sentiment": "bullish"}]}, "sentiment"),
        (lambda a: {**a, "publisher": "SYNTHETIC newswire"}, "publisher"),
        (lambda a: {**a, "published_utc": "2020-01-01T00:00:00Z"}, "published_utc"),
        (lambda a: {k: v for k, v in a.items() if k != "title"}, "title"),
    ],
    ids=["an unknown sentiment", "a publisher as a string", "outside the window", "no title"],
)
def test_a_malformed_news_answer_fails_naming_the_field(polygon, instance, lie, field) -> None:
    server, key = polygon
    server.mutate(
        "polygon",
        lambda request, payload: {**payload, "results": [lie(a) for a in payload["results"]]},
    )
    result = materialize(instance, "polygon_news")
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert "/v2/reference/news" in message and "ticker=SPY" in message
    assert field in message and key not in message, message
    assert not lake.raw_partition_path("polygon", "news", DAY_2025).exists()


def test_the_equity_schedule_keeps_the_trading_calendar() -> None:
    """At 20:15 New York time the schedule pulls the trading day and the one before it; on
    Labor Day (2025-09-01) it skips; the Tuesday after, the day before is Friday."""
    from mkt_platform.defs.polygon.definitions import equity_requests

    def at(day: str):
        return equity_requests(datetime.fromisoformat(f"{day}T20:15").replace(tzinfo=NEW_YORK))

    assert [r.partition_key for r in at("2025-08-29")] == ["2025-08-28", "2025-08-29"]
    skipped = at("2025-09-01")
    assert "2025-09-01 is no NYSE trading day" in skipped.skip_message
    assert [r.partition_key for r in at("2025-09-02")] == ["2025-08-29", "2025-09-02"]


def test_freshness_follows_the_trading_days(polygon, instance, monkeypatch) -> None:
    """SPY's 2025-08-29, pulled at 20:30 New York time that Friday (the day's bars complete),
    is fresh on Tuesday morning (Labor Day is no trading day, so Friday is the latest closed
    one); on Wednesday morning Tuesday's missing partition makes it stale, by name."""
    from mkt_platform import settings
    from mkt_platform.defs.monitoring.freshness import evaluate, freshness_rules
    from mkt_platform.defs.polygon.datasets import DATASETS, SPY_AGGS_1M
    from mkt_platform.lib.equity_calendar import trading_days_partitions_def

    pulled_at = datetime(2025, 8, 29, 20, 30, tzinfo=NEW_YORK)
    monkeypatch.setattr(settings, "utcnow", lambda: pulled_at.astimezone(UTC))
    result = materialize(instance, "polygon_spy_aggs_1m")
    assert result.success
    (materialization,) = result.asset_materializations_for_node("polygon_spy_aggs_1m")
    assert materialization.metadata["window_closed"].value is True
    (rule,) = [r for r in freshness_rules(DATASETS) if r.key == SPY_AGGS_1M.key]
    partitions = trading_days_partitions_def()
    tuesday = evaluate(instance, rule, partitions, datetime(2025, 9, 2, 10, tzinfo=NEW_YORK))
    assert tuesday.passed, tuesday.summary
    assert tuesday.metadata["latest_closed_partition"] == DAY_2025
    wednesday = evaluate(instance, rule, partitions, datetime(2025, 9, 3, 10, tzinfo=NEW_YORK))
    assert not wednesday.passed
    assert "latest closed partition 2025-09-02 not materialized" in wednesday.summary
