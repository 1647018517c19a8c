"""The pull schedules: which partitions and assets a tick requests, at given times."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from mkt_platform.definitions import build_definitions
from mkt_platform.defs.binance.datasets import KLINES_1M
from mkt_platform.defs.binance.resources import BinanceSpotClient


@pytest.fixture
def instance(instance_with_ref):
    """Schedule contexts open the instance from its reference: SQLite files, not memory."""
    return instance_with_ref


@pytest.fixture
def defs(data_dir):
    return build_definitions()


def tick(defs, instance, name: str, at: str) -> list[dg.RunRequest]:
    schedule = defs.resolve_schedule_def(name)
    context = dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=datetime.fromisoformat(at).replace(tzinfo=UTC),
        repository_def=defs.get_repository_def(),
    )
    return list(schedule.evaluate_tick(context).run_requests or [])


def keys(requests) -> list[tuple[str, list[str]]]:
    return [
        (r.partition_key, sorted(k.to_user_string() for k in r.asset_selection)) for r in requests
    ]


BINANCE = ["binance_klines_1m"]
#: The 5-minute snapshots, taken in today's run of the same tick (never for yesterday).
SPOT_SNAPSHOTS = ["binance_order_book", "binance_recent_trades", "binance_ticker_24h"]
FIVE_MINUTES = "binance_five_minute_refresh_schedule"
HOURLY = [
    "binance_klines_1h",
    "deribit_option_trades",
    "deribit_volatility_index",
    "hyperliquid_candles_1h",
    "hyperliquid_funding_rates",
]


def test_cron_and_default_status(defs):
    """Every 5 minutes for Binance 1m, hourly for the hourly sources, described; stopped by
    default here because ``data_dir`` points every client at the replay (running against
    live exchanges: see test_replay_mode_starts_the_pull_schedules_stopped)."""
    binance = defs.resolve_schedule_def(FIVE_MINUTES)
    hourly = defs.resolve_schedule_def("hourly_sources_refresh_schedule")
    assert binance.cron_schedule == "*/5 * * * *"
    assert hourly.cron_schedule == "2 * * * *"
    for schedule in (binance, hourly):
        assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
        assert schedule.execution_timezone == "UTC"
        assert "previous day" in schedule.description


def test_midday_tick_refreshes_today_once_yesterday_is_closed(defs, instance, replay):
    """At 13:05 with yesterday pulled after it closed: only today's partition."""
    assert dg.materialize(
        [KLINES_1M.asset()],
        partition_key="2023-03-20",
        resources={"binance": BinanceSpotClient(base_url=replay.base_url("binance"))},
        instance=instance,
    ).success
    requests = tick(defs, instance, FIVE_MINUTES, "2023-03-21T13:05")
    assert keys(requests) == [("2023-03-21", sorted(BINANCE + SPOT_SNAPSHOTS))]
    assert requests[0].tags["mkt/reason"] == "schedule"


def test_tick_after_midnight_also_closes_yesterday(defs, instance):
    """At 00:05 with yesterday never pulled after its close: yesterday (its klines only: a
    snapshot is of now), then today with the snapshots."""
    requests = tick(defs, instance, FIVE_MINUTES, "2023-03-21T00:05")
    assert keys(requests) == [
        ("2023-03-20", BINANCE),
        ("2023-03-21", sorted(BINANCE + SPOT_SNAPSHOTS)),
    ]
    assert len({r.run_key for r in requests}) == 2


def test_hourly_sources_tick(defs, instance):
    """The hourly schedule pulls Binance 1h klines, Hyperliquid candles and funding, Deribit
    trades and DVOL, and takes the Hyperliquid asset-contexts snapshot in today's run."""
    requests = tick(defs, instance, "hourly_sources_refresh_schedule", "2022-01-02T00:02")
    today = sorted([*HOURLY, "hyperliquid_asset_contexts"])
    assert keys(requests) == [("2022-01-01", HOURLY), ("2022-01-02", today)]


def test_the_5_minute_refresh_feeds_no_session_mart(defs, instance):
    """The 5-minute refresh pulls what no session mart reads (the 1m klines; the spot
    snapshots feed only order_book_depth), so its ticks never rebuild a session; what the
    session marts read comes hourly, when an hour closes."""
    graph = defs.resolve_asset_graph()

    def pulled(schedule: str, at: str) -> set[dg.AssetKey]:
        return {k for r in tick(defs, instance, schedule, at) for k in r.asset_selection}

    five_minutes = pulled(FIVE_MINUTES, "2023-03-21T13:05")
    assert five_minutes == {dg.AssetKey(k) for k in BINANCE + SPOT_SNAPSHOTS}
    downstream = dg.AssetSelection.assets(*five_minutes).downstream().resolve(graph)
    assert {k for k in downstream if "dbt" in graph.get(k).kinds} == {
        dg.AssetKey("order_book_depth")
    }
    hourly = pulled("hourly_sources_refresh_schedule", "2023-03-21T13:02")
    assert dg.AssetKey("binance_klines_1h") in hourly
    feeds = dg.AssetSelection.assets(*hourly).downstream().resolve(graph)
    assert dg.AssetKey("session_ohlc_daily") in feeds


def test_gap_repair_and_refresh_schedules_are_listed(defs):
    names = {s.name for s in defs.schedules}
    assert {
        "binance_klines_1m_gap_repair_schedule",
        FIVE_MINUTES,
        "hourly_sources_refresh_schedule",
    } <= names
    sensor = defs.resolve_sensor_def("mkt_automation_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_automation_is_split_by_the_cadence_of_the_raw_inputs(defs):
    """Every asset with an automation condition is evaluated by exactly one of our two
    sensors (none falls to Dagster's default sensor): the NYSE trading-day assets every 5
    minutes (Polygon is pulled once a trading day), all others every 30 seconds. The 30-second
    sensor's assets carry no trading-day partitions, whose definition (every holiday as an
    exclusion) each subset of a cursor embeds."""
    from mkt_platform.lib.equity_calendar import trading_days_partitions_def

    graph = defs.resolve_asset_graph()
    automated = {k for k in graph.get_all_asset_keys() if graph.get(k).automation_condition}
    trading_days = {
        k for k in automated if graph.get(k).partitions_def == trading_days_partitions_def()
    }
    assert dg.AssetKey("equity_session_ohlc_daily") in trading_days
    sensors = {
        s.name: s for s in defs.sensors if isinstance(s, dg.AutomationConditionSensorDefinition)
    }
    assert set(sensors) == {"mkt_automation_sensor", "equity_automation_sensor"}
    targeted = {name: s.asset_selection.resolve(graph) & automated for name, s in sensors.items()}
    assert targeted["equity_automation_sensor"] == trading_days
    assert targeted["mkt_automation_sensor"] == automated - trading_days
    assert sensors["mkt_automation_sensor"].minimum_interval_seconds == 30
    assert sensors["equity_automation_sensor"].minimum_interval_seconds == 300
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in sensors.values())


def test_replay_mode_starts_the_pull_schedules_stopped(data_dir, monkeypatch):
    """With every exchange base URL on this machine (the replay server), the schedules that
    pull recent partitions from an exchange start stopped (the recordings hold no today);
    one live base URL is enough for them to run by default again."""
    local = {
        "BINANCE_BASE_URL": "http://127.0.0.1:8001/binance",
        "HYPERLIQUID_BASE_URL": "http://localhost:8001/hyperliquid",
        "DERIBIT_BASE_URL": "http://127.0.0.1:8001/deribit",
        "DERIBIT_HISTORY_BASE_URL": "http://127.0.0.1:8001/deribit_history",
    }
    for name, url in local.items():
        monkeypatch.setenv(name, url)
    pulls = {
        FIVE_MINUTES,
        "hourly_sources_refresh_schedule",
        "binance_klines_1m_gap_repair_schedule",
        "polygon_equity_schedule",
    }
    replayed = build_definitions()
    # The warehouse's upkeep pulls nothing: it runs in replay mode too.
    upkeep = "warehouse_maintenance_schedule"
    assert {s.name for s in replayed.schedules} == {*pulls, upkeep}
    for schedule in replayed.schedules:
        expected = (
            dg.DefaultScheduleStatus.RUNNING
            if schedule.name == upkeep
            else (dg.DefaultScheduleStatus.STOPPED)
        )
        assert schedule.default_status == expected, schedule.name
    assert (
        "replay mode"
        in replayed.resolve_schedule_def("hourly_sources_refresh_schedule").description
    )

    monkeypatch.setenv("DERIBIT_BASE_URL", "https://www.deribit.com")
    for schedule in build_definitions().schedules:
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING, schedule.name
