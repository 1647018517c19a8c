"""VIX, and the replaced system's operational rules on the Polygon datasets (issue 18, items 3,
5 and 6): ``polygon_vix_aggs_1m`` from the replay's SYNTHETIC ``I:VIX`` bars (no recording
exists, SOURCES.md section 13), labelled as such in the lake and the materializations; late
data of a closed trading day rejected by default and reported, accepted by the setting; an
alert when a partition's write is slow.

Data: SPY's recorded minute bars of 2025-08-29 (``raftroch1_polygon_SPY_1min_2025-08-29.csv``)
and the replay's SYNTHETIC ``I:VIX`` bars of that day.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pyarrow.parquet as pq

from mkt_platform.lib import lake
from tests.test_alerts import receiver as receiver  # the webhook receiver fixture
from tests.test_polygon import DAY_2025, FILE_2025, NEW_YORK, recorded_bars, regular_hours
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
    logs = [e.message for e in instance.all_logs(result.run_id) if e.message]
    assert any("SYNTHETIC" in m and "polygon_vix_aggs_1m" in m for m in logs)

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
    re-pull rewrites the day. A re-pull that changed nothing is no late data."""
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
