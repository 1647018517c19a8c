"""The raw-dataset registry: a dataset declared once is covered by every monitor.

A throwaway dataset (venue ``testvenue``, dataset ``widgets``; its rows are SYNTHETIC, made
up for this test, in the shape of a funding record) is added to the registry's datasets, and
the test finds it everywhere a raw dataset must be: its asset with quality checks, freshness
check and column schema change check, the refresh schedule it declares, the late-data
sensor, the freshness sensor and the drift watch. No module outside the spec was edited.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import dagster as dg
import pyarrow as pa
import pytest

from mkt_platform.definitions import build_definitions
from mkt_platform.defs.monitoring import drift, late_data
from mkt_platform.defs.registry import raw_datasets
from mkt_platform.lib import lake, raw
from mkt_platform.lib.datasets import DATASET_TAG, VENUE_TAG, Freshness, RawDataset, Refresh

SCHEMA = pa.schema(
    [("coin", pa.string()), ("time", pa.timestamp("ms", tz="UTC")), ("rate", pa.float64())]
)
DAY = "2023-03-01"
PULLED_AT = datetime(2023, 3, 2, 2, 0, tzinfo=UTC)


def widgets(day: str, rows: int) -> pa.Table:
    """SYNTHETIC rows: ``rows`` hourly records of one coin on ``day``."""
    start = datetime.fromisoformat(day).replace(tzinfo=UTC)
    return pa.table(
        {
            "coin": ["W"] * rows,
            "time": [start + timedelta(hours=h) for h in range(rows)],
            "rate": [0.0001 * h for h in range(rows)],
        },
        schema=SCHEMA,
    )


def pull(context: dg.AssetExecutionContext, client: object) -> dg.MaterializeResult:
    table = widgets(context.partition_key, 3)
    outcomes = {context.partition_key: raw.funding_quality(table)}
    context.add_asset_metadata(
        {
            "content_hash": lake.content_hash(table),
            "added_fields": dg.MetadataValue.json(["colour"]),
            "window_closed": True,
            "last_record_time": dg.MetadataValue.timestamp(
                datetime.fromisoformat(context.partition_key).replace(tzinfo=UTC)
                + timedelta(hours=2)
            ),
            "dagster/column_schema": WIDGETS.column_schema(table.schema),
        },
        partition_key=context.partition_key,
    )
    return dg.MaterializeResult(
        check_results=raw.check_results(context.asset_key, "funding", outcomes)
    )


WIDGETS = RawDataset(
    venue="testvenue",
    dataset="widgets",
    description="SYNTHETIC widgets of a throwaway venue (GET /widgets), one file per UTC day.",
    resource="binance",
    compute=pull,
    schema=SCHEMA,
    columns={"coin": "Coin.", "time": "Record time (UTC).", "rate": "A rate (fraction)."},
    quality="funding",
    freshness=Freshness(timedelta(hours=1), timedelta(hours=1), "last_record_time"),
    # The exchange now serves a fourth record: a late one.
    late_data=lambda client, keys, now: {key: widgets(key, 4) for key in keys},
    refresh=Refresh("testvenue_widgets_refresh_schedule", "7 * * * *", "Every hour at :07"),
)
KEY = dg.AssetKey("testvenue_widgets")


@pytest.fixture
def defs(data_dir, monkeypatch):
    """The platform's definitions with WIDGETS declared as a venue folder declares its
    datasets (here, beside Binance's: the registry reads each venue's ``DATASETS``)."""
    from mkt_platform.defs.binance import datasets as venue

    monkeypatch.setattr(venue, "DATASETS", (*venue.DATASETS, WIDGETS))
    return build_definitions()


def test_registry_lists_each_venue_dataset_once():
    """The registry finds every venue's datasets, and only there is a raw dataset listed."""
    names = [d.name for d in raw_datasets()]
    assert names == sorted(names, key=lambda n: n.split("_")[0]) and len(set(names)) == len(names)
    assert {
        "binance_klines_1h",
        "binance_klines_1m",
        "deribit_option_trades",
        "hyperliquid_candles_1h",
        "hyperliquid_funding_rates",
        "hyperliquid_asset_contexts",
    } <= set(names)


def test_a_registered_dataset_gets_its_asset_checks_and_schedule(defs):
    graph = defs.resolve_asset_graph()
    node = graph.get(KEY)
    assert node.group_name == "raw_testvenue"
    assert node.tags[VENUE_TAG] == "testvenue" and node.tags[DATASET_TAG] == "widgets"
    assert node.owners == ["team:market-data"]
    assert node.partitions_def == graph.get(dg.AssetKey("binance_klines_1h")).partitions_def
    assert node.backfill_policy == graph.get(dg.AssetKey("binance_klines_1h")).backfill_policy
    checks = {k.name for k in graph.asset_check_keys if k.asset_key == KEY}
    assert {"no_duplicate_keys", "times_monotonic", "freshness"} <= checks
    assert any("schema" in name for name in checks), checks  # the column schema change check
    schedule = defs.resolve_schedule_def("testvenue_widgets_refresh_schedule")
    assert schedule.cron_schedule == "7 * * * *"
    assert schedule.job.selection.resolve(graph) == {KEY}
    late = defs.resolve_sensor_def("late_data_sensor")
    assert KEY in late.asset_selection.resolve(graph)


def test_a_registered_dataset_is_watched_by_every_monitor(defs, instance):
    """Materialize it once, then: freshness judges it, the late-data re-pull finds its
    changed day, and the drift watch reports the field it added."""
    repo = defs.get_repository_def()
    result = dg.materialize(
        [WIDGETS.asset()], partition_key=DAY, instance=instance, resources={"binance": object()}
    )
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {"no_duplicate_keys": True, "times_monotonic": True}

    from mkt_platform.defs.monitoring import freshness

    rules = freshness.freshness_rules((*raw_datasets(), WIDGETS))
    rule = next(r for r in rules if r.key == KEY)
    judged = freshness.evaluate_all(instance, repo.asset_graph, PULLED_AT, [rule])
    assert [r.key for r in judged] == [KEY]
    assert judged[0].metadata["latest_closed_partition"] == DAY
    assert "historical" not in judged[0].summary  # a day old: stale, not history
    # A month later nothing new was pulled: the summary says the lake holds history, and
    # how old its newest partition is, instead of only listing lags.
    later = freshness.evaluate_all(
        instance, repo.asset_graph, PULLED_AT + timedelta(days=30), [rule]
    )
    assert not later[0].passed and later[0].metadata["historical_data"] is True
    assert "historical data only: the newest partition pulled (2023-03-01) ended 30d02h ago" in (
        later[0].summary
    )

    requests = late_data.late_data_requests(
        instance, [WIDGETS], {"binance": None}, PULLED_AT, 1, logging.getLogger("test")
    )
    assert [(r.partition_key, r.asset_selection) for r in requests] == [(DAY, [KEY])]

    found = drift.current_drift(instance, [KEY], [])
    assert "added|testvenue_widgets|colour" in found


def test_two_datasets_with_one_key_are_refused(monkeypatch):
    from mkt_platform.defs.binance import datasets as binance

    monkeypatch.setattr(binance, "DATASETS", (*binance.DATASETS, binance.KLINES_1H))
    with pytest.raises(ValueError, match="binance_klines_1h"):
        raw_datasets()
