"""Issue 5 end to end against the replay server: late data, schema drift, freshness and the
data-quality checks, with the sensors evaluated by ``build_sensor_context`` on a real
instance and the checks executed inside materializations."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow.parquet as pq
import pytest

from mkt_platform import settings
from mkt_platform.definitions import build_definitions
from mkt_platform.defs.binance.resources import BinanceSpotClient
from mkt_platform.defs.deribit.resources import DeribitClient
from mkt_platform.defs.hyperliquid.resources import HyperliquidClient
from mkt_platform.defs.registry import raw_datasets
from mkt_platform.testing import mutations
from tests.conftest import SYMBOLS, materialize_days, recorded_klines
from tests.test_weekly_monthly_sessions import requested_by, run_requested

KLINES_1H = dg.AssetKey("binance_klines_1h")


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def clients(replay) -> dict:
    return {
        "binance": BinanceSpotClient(base_url=replay.base_url("binance")),
        "hyperliquid": HyperliquidClient(base_url=replay.base_url("hyperliquid")),
        "deribit": DeribitClient(
            base_url=replay.base_url("deribit"),
            history_base_url=replay.base_url("deribit_history"),
        ),
    }


@pytest.fixture
def mutated(replay) -> Iterator:
    """The session's replay server; whatever mutation a test sets is cleared afterwards."""
    yield replay
    replay.clear_mutations()


@pytest.fixture
def webhook(monkeypatch) -> Iterator[list[dict]]:
    """A local webhook receiver; MKT_ALERT_WEBHOOK_URL points at it. Yields the JSON bodies."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("MKT_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook/T0K")
    yield received
    server.shutdown()
    server.server_close()


def at(monkeypatch, moment: datetime) -> None:
    """Make ``moment`` the platform's now (pull times, sensors, checks)."""
    monkeypatch.setattr(settings, "utcnow", lambda: moment)


def pull(defs, instance, key: dg.AssetKey, partition: str, tags: dict | None = None):
    return dg.materialize(
        [defs.get_assets_def(key)],
        partition_key=partition,
        resources=defs.resources,
        instance=instance,
        tags=tags or {},
        raise_on_error=False,
    )


def mart(data_dir: Path, table: str, instrument: str, start: datetime) -> dict:
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute(
            f"select * from marts.{table} where source = 'binance' and instrument = ? "
            "and session_start = ?",
            [instrument, start],
        )
        names = [c[0] for c in cursor.description]
        (row,) = cursor.fetchall()
        return dict(zip(names, row, strict=True))


def oracle(symbol: str, start: datetime, end: datetime) -> dict:
    """OHLCV of Binance's own recorded 1h klines in [start, end)."""
    hours = [r for r in recorded_klines(symbol, "1h") if ms(start) <= r[0] < ms(end)]
    return {
        "open": Decimal(hours[0][1]),
        "high": max(Decimal(h[2]) for h in hours),
        "low": min(Decimal(h[3]) for h in hours),
        "close": Decimal(hours[-1][4]),
        "volume": sum(Decimal(h[5]) for h in hours),
        "trades": sum(h[8] for h in hours),
    }


LATE_DAY = "2023-02-22"
LATE_FROM = datetime(2023, 2, 22, 15, tzinfo=UTC)
LATE_TO = datetime(2023, 2, 23, tzinfo=UTC)
SESSIONS = (
    ("session_ohlc_daily", datetime(2023, 2, 22, 8, tzinfo=UTC), timedelta(days=1)),
    ("session_ohlc_weekly", datetime(2023, 2, 17, 8, tzinfo=UTC), timedelta(days=7)),
    ("session_ohlc_monthly", datetime(2023, 1, 27, 8, tzinfo=UTC), timedelta(days=28)),
)


@pytest.mark.slow
def test_truncated_then_complete_day_gives_one_late_data_run(
    data_dir, hourly_universe, instance, mutated, monkeypatch
):
    """Binance serves 2023-02-22 without its last 9 hours when the month is pulled; once it
    serves the whole day the sensor requests exactly one run (that raw partition, tagged
    late_data, whose metadata shows the 27 added candles), automation rebuilds the daily,
    weekly and monthly sessions over it, and they equal Binance's complete recording. The
    unchanged days of the lookback, and the same day once repaired, request nothing."""

    def late(_request, payload):
        return [r for r in payload if not ms(LATE_FROM) <= r[0] < ms(LATE_TO)]

    mutated.mutate("binance", late)
    results = materialize_days(date(2023, 1, 27), date(2023, 2, 23), instance)
    assert all(r.success for r in results)
    for table, start, length in SESSIONS:
        row = mart(data_dir, table, "BTCUSDT", start)
        assert row["volume"] < oracle("BTCUSDT", start, start + length)["volume"], table
    mutated.clear_mutations()

    now = datetime(2023, 2, 24, 9, tzinfo=UTC)  # lookback: 02-21, 02-22, 02-23
    at(monkeypatch, now)
    defs = build_definitions()
    context = dg.build_sensor_context(instance=instance, resources=clients(mutated))
    result = defs.resolve_sensor_def("late_data_sensor")(context)
    assert [(r.partition_key, r.asset_selection) for r in result.run_requests] == [
        (LATE_DAY, [KLINES_1H])
    ]
    request = result.run_requests[0]
    assert request.tags["mkt/reason"] == "late_data"
    # The automation sensor's tick before the late-data run: everything is up to date.
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=now)
    assert tick.total_requested == 0
    run = pull(defs, instance, KLINES_1H, LATE_DAY, request.tags)
    assert run.success
    (materialization,) = run.asset_materializations_for_node(KLINES_1H.path[-1])
    change = materialization.metadata["change"].value
    assert (change["rows_added"], change["rows_changed"], change["rows_removed"]) == (27, 0, 0)
    assert change["first_changed"].startswith("2023-02-22T15:00")
    assert change["last_changed"].startswith("2023-02-22T23:00")
    late_runs = instance.get_runs(filters=dg.RunsFilter(tags={"mkt/reason": "late_data"}))
    assert len(late_runs) == 1

    cursor = tick.cursor
    for _ in range(4):
        tick = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, evaluation_time=now, cursor=cursor
        )
        cursor = tick.cursor
        requested = requested_by(tick, defs)
        if not requested:
            break
        for partitions_def in {
            defs.get_assets_def(dg.AssetKey(n)).partitions_def for n, _ in requested
        }:
            group = {
                (n, pk)
                for n, pk in requested
                if defs.get_assets_def(dg.AssetKey(n)).partitions_def == partitions_def
            }
            run_requested(defs, instance, group)
    for symbol in SYMBOLS:
        for table, start, length in SESSIONS:
            row = mart(data_dir, table, symbol, start)
            expected = oracle(symbol, start, start + length)
            assert {k: row[k] for k in expected} == expected, (symbol, table)

    again = defs.resolve_sensor_def("late_data_sensor")(
        dg.build_sensor_context(instance=instance, resources=clients(mutated))
    )
    assert not again.run_requests


@pytest.mark.parametrize(
    ("mutation", "field", "observed"),
    [
        (mutations.drop_field(4), "open|high|low|close|volume", "11 fields"),
        (mutations.stringify_field(0), "open_time", "(str)"),
        (mutations.set_field(1, 27000.5), "open", "(float)"),
    ],
    ids=["dropped field", "number became string", "string became number"],
)
def test_breaking_drift_fails_quarantines_and_alerts_once(
    mutation, field, observed, data_dir, instance, mutated, webhook
):
    """A removed or re-typed kline field fails the pull naming the dataset, the field and
    the observed type; nothing reaches the raw partition; the payload is quarantined; the
    drift sensor alerts once, even after a second failing pull."""
    defs = build_definitions()
    mutated.mutate("binance", mutation)
    first = pull(defs, instance, KLINES_1H, "2023-02-22")
    assert not first.success
    text = "\n".join(
        str(e.event_specific_data.error.message)
        for e in first.all_events
        if e.event_type_value == "STEP_FAILURE"
    )
    assert "binance_klines" in text and f"field {field!r}" in text and observed in text
    assert "2023-02-22" in text
    assert not (data_dir / "lake" / "raw").exists()
    (body_path,) = [
        p
        for p in (data_dir / "lake" / "quarantine" / "binance_klines").glob("*.json")
        if not p.name.endswith(".error.json")
    ]
    payload = json.loads(body_path.read_bytes())
    assert len(payload) == 24  # the whole offending page, as served
    violation = json.loads(body_path.with_name(body_path.stem + ".error.json").read_text())
    assert violation["field"] == field and violation["partitions"] == ["2023-02-22"]

    first_tick = defs.resolve_sensor_def("schema_drift_sensor")(
        dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources)
    )
    assert [a["kind"] for a in webhook] == ["schema_drift"]
    assert field in webhook[0]["summary"] and webhook[0]["details"]["field"] == field
    assert not pull(defs, instance, KLINES_1H, "2023-02-21").success
    defs.resolve_sensor_def("schema_drift_sensor")(
        dg.build_sensor_context(
            instance=instance, cursor=first_tick.cursor, definitions=defs, resources=defs.resources
        )
    )
    assert len(webhook) == 1  # the same drift again: not re-alerted


def test_added_field_is_recorded_and_the_pull_goes_on(data_dir, instance, mutated, webhook):
    """Binance appends a 13th field: the day is written as usual, the materialization names
    the added field, and the drift sensor warns once."""
    defs = build_definitions()
    mutated.mutate("binance", mutations.add_field(None, "new"))
    run = pull(defs, instance, KLINES_1H, "2023-02-22")
    assert run.success
    (materialization,) = run.asset_materializations_for_node(KLINES_1H.path[-1])
    assert materialization.metadata["added_fields"].value == ["field_12"]
    day = pq.read_table(materialization.metadata["path"].value)
    assert day.num_rows == 3 * 24 and "field_12" not in day.column_names
    first_tick = defs.resolve_sensor_def("schema_drift_sensor")(
        dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources)
    )
    assert [(a["kind"], a["severity"]) for a in webhook] == [("schema_drift", "warning")]
    assert "field_12" in webhook[0]["summary"]
    defs.resolve_sensor_def("schema_drift_sensor")(
        dg.build_sensor_context(
            instance=instance, cursor=first_tick.cursor, definitions=defs, resources=defs.resources
        )
    )
    assert len(webhook) == 1


def test_hyperliquid_and_deribit_retyped_fields_are_quarantined(data_dir, instance, mutated):
    """The same rule for the object payloads: a candle's trade count sent as a string, and
    a Deribit trade price sent as a string, fail their pulls and are quarantined."""
    defs = build_definitions()
    mutated.mutate("hyperliquid", mutations.stringify_field("n"))
    mutated.mutate("deribit_history", mutations.stringify_field("price"))
    candles = pull(defs, instance, dg.AssetKey("hyperliquid_candles_1h"), "2023-05-22")
    trades = pull(defs, instance, dg.AssetKey("deribit_option_trades"), "2022-01-01")
    assert not candles.success and not trades.success
    quarantined = {p.parent.name for p in (data_dir / "lake" / "quarantine").glob("*/*.error.json")}
    assert quarantined == {"hyperliquid_candles", "deribit_option_trades"}
    assert not [p for p in (data_dir / "lake" / "raw").rglob("*") if p.is_file()]


def test_stale_raw_asset_fails_freshness_with_its_lag_and_alerts(
    data_dir, instance, replay, monkeypatch, webhook
):
    """BTC/ETH/SOL 1h klines pulled at 2023-02-23 10:20 are fresh at 10:25 (the newest
    candle, 09:00-10:00, ended 25 minutes ago); with no pull since, at 12:00 the check fails
    with a lag of 2 h (more than 1 h interval + 15 min) and one alert reaches the webhook;
    after midnight the closed day 02-23, never pulled after it closed, fails too."""
    defs = build_definitions()
    at(monkeypatch, datetime(2023, 2, 23, 10, 20, tzinfo=UTC))
    for day in ("2023-02-22", "2023-02-23"):
        assert pull(defs, instance, KLINES_1H, day).success

    def evaluate(moment: datetime, cursor: str | None = None):
        at(monkeypatch, moment)
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, definitions=defs, resources=defs.resources
        )
        result = defs.resolve_sensor_def("freshness_sensor")(context)
        by_key = {e.asset_key: e for e in result.asset_events}
        return by_key[KLINES_1H], result.cursor

    fresh, cursor = evaluate(datetime(2023, 2, 23, 10, 25, tzinfo=UTC))
    assert fresh.passed, fresh.description
    assert fresh.metadata["data_lag_seconds"].value == 25 * 60
    assert not [a for a in webhook if a["asset_key"] == "binance_klines_1h"]

    stale, cursor = evaluate(datetime(2023, 2, 23, 12, tzinfo=UTC), cursor)
    assert not stale.passed
    assert stale.metadata["data_lag_seconds"].value == 2 * 3600
    alerts = [a for a in webhook if a["asset_key"] == "binance_klines_1h"]
    assert len(alerts) == 1 and alerts[0]["kind"] == "freshness"
    assert alerts[0]["details"]["data_lag_seconds"] == 2 * 3600
    again, cursor = evaluate(datetime(2023, 2, 23, 12, 5, tzinfo=UTC), cursor)
    assert not again.passed
    assert len([a for a in webhook if a["asset_key"] == "binance_klines_1h"]) == 1

    closed, _ = evaluate(datetime(2023, 2, 24, 0, 30, tzinfo=UTC), cursor)
    assert not closed.passed
    assert closed.metadata["latest_closed_partition"].value == "2023-02-23"
    assert closed.metadata["partition_lag_seconds"].value == 30 * 60


def test_quality_checks_run_in_the_materialization_and_block_bad_data(data_dir, instance, mutated):
    """The halt day's missing 13:00 candle is a reported gap (a warning) and the marts may
    refresh; a candle whose high is below its open fails the blocking OHLC check, and
    automation does not build sessions over it."""
    defs = build_definitions()
    halt = pull(defs, instance, KLINES_1H, "2023-03-24")
    assert halt.success
    checks = {e.check_name: e for e in halt.get_asset_check_evaluations()}
    assert checks["ohlc_sane"].passed and checks["no_duplicate_keys"].passed
    gap = checks["expected_candles"]
    assert not gap.passed and gap.severity == dg.AssetCheckSeverity.WARN
    missing = gap.metadata["details"].value["per_partition"]["2023-03-24"]["metadata"]["missing"]
    assert missing == {s: ["13:00"] for s in SYMBOLS}

    assert pull(defs, instance, KLINES_1H, "2023-03-26").success
    # Hyperliquid's candles, the other venue int_candles_1h reads, pulled clean, so that the
    # sessions wait on Binance alone.
    for day in ("2023-03-24", "2023-03-25", "2023-03-26"):
        assert pull(defs, instance, dg.AssetKey("hyperliquid_candles_1h"), day).success
    when = datetime(2023, 3, 26, 9, tzinfo=UTC)
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=when)

    opened = ms(datetime(2023, 3, 25, 5, tzinfo=UTC))
    mutated.mutate(
        "binance",
        mutations.set_field(
            2,
            "1.00000000",
            match=lambda r: r[0] == opened,
            when=mutations.matching(symbol="BTCUSDT"),
        ),
    )
    bad = pull(defs, instance, KLINES_1H, "2023-03-25")
    # The blocking check fails before anything is written (issue 12, fault 6): the lake has
    # no 2023-03-25 file for dbt to read, the rows are quarantined, the failure names them.
    assert not bad.success
    (failure,) = bad.get_step_failure_events()
    text = failure.step_failure_data.user_failure_data.description
    assert text.startswith("binance_klines_1h: 1 partition(s) failed blocking data-quality")
    assert (
        "2023-03-25 ohlc_sane: 1 row(s) at fault, first: BTCUSDT 2023-03-25T05:00Z: high 1" in text
    )
    assert not bad.get_asset_materialization_events()
    assert not (data_dir / "lake/raw/binance/klines_1h/date=2023-03-25").exists()
    (kept,) = (data_dir / "lake/quarantine/rejected/binance_klines_1h/date=2023-03-25").glob(
        "*.parquet"
    )
    rows = pq.read_table(kept).to_pylist()
    assert len(rows) == 72 and {
        r["high"] for r in rows if r["open_time"].hour == 5 and r["symbol"] == "BTCUSDT"
    } == {Decimal(1)}
    blocking = {s.name for s in defs.get_assets_def(KLINES_1H).check_specs if s.blocking}
    assert "ohlc_sane" in blocking and "expected_candles" not in blocking

    def sessions(tick) -> set[str]:
        # The session partitions of int_candles_1h: the first model over the raw klines.
        return {pk for n, pk in requested_by(tick, defs) if n == "int_candles_1h"}

    tick = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, evaluation_time=when, cursor=tick.cursor
    )
    assert not sessions(tick)  # blocked by the failed OHLC check
    mutated.clear_mutations()
    assert pull(defs, instance, KLINES_1H, "2023-03-25").success
    tick = dg.evaluate_automation_conditions(
        defs=defs, instance=instance, evaluation_time=when, cursor=tick.cursor
    )
    assert {"2023-03-24", "2023-03-25"} <= sessions(tick)  # the same change, now clean


def test_dbt_materializations_carry_the_warehouse_column_schema(data_dir, instance, webhook):
    """Each dbt model's materialization carries the columns the warehouse has after the run
    (DuckDB's types, in order, the dbt yml's descriptions); the column schema change check
    of a mart passes while its schema holds, and fails naming the column when a model drops
    one (here a materialization reported as if the model had been edited), which the drift
    sensor reports once."""
    import yaml

    daily = dg.AssetKey("session_ohlc_daily")
    # Binance's candles and what is built from them (as `--only`): the session marts
    materialize_days(date(2023, 2, 21), date(2023, 2, 22), instance, only=("binance_klines_1h",))
    (record,) = instance.fetch_materializations(daily, limit=1).records
    schema = record.asset_materialization.metadata["dagster/column_schema"].value
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        warehouse = con.execute(
            "select column_name, data_type from information_schema.columns where "
            "table_schema = 'marts' and table_name = 'session_ohlc_daily' "
            "order by ordinal_position"
        ).fetchall()
    assert [(c.name, c.type) for c in schema.columns] == warehouse
    assert ("open", "DECIMAL(38,8)") in warehouse
    yml = yaml.safe_load(
        (Path(__file__).parents[1] / "dbt_project/models/marts/session_ohlc_daily.yml").read_text()
    )
    described = {c["name"]: c["description"] for c in yml["models"][0]["columns"]}
    assert {c.name: c.description for c in schema.columns} == {
        name: described.get(name) for name, _ in warehouse
    }
    candles = instance.fetch_materializations(dg.AssetKey("int_candles_1h"), limit=1)
    assert "dagster/column_schema" in candles.records[0].asset_materialization.metadata

    defs = build_definitions()
    checks = [
        c
        for c in defs.asset_checks
        if any(k.name == "column_schema_change" and k.asset_key == daily for k in c.check_keys)
    ]
    assert len(checks) == 1

    def run_check() -> dg.AssetCheckEvaluation:
        result = dg.materialize(
            checks,
            instance=instance,
            selection=dg.AssetSelection.checks(dg.AssetCheckKey(daily, "column_schema_change")),
        )
        (evaluation,) = result.get_asset_check_evaluations()
        return evaluation

    assert run_check().passed
    dropped = [c for c in schema.columns if c.name != "trades"]
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            daily,
            partition="2023-02-22",
            metadata={"dagster/column_schema": dg.TableSchema(columns=dropped)},
        )
    )
    changed = run_check()
    assert not changed.passed and "Removed columns: trades" in changed.description
    first = defs.resolve_sensor_def("schema_drift_sensor")(
        dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources)
    )
    alerts = [a for a in webhook if a["asset_key"] == "session_ohlc_daily"]
    assert len(alerts) == 1 and alerts[0]["kind"] == "schema_drift"
    defs.resolve_sensor_def("schema_drift_sensor")(
        dg.build_sensor_context(
            instance=instance, cursor=first.cursor, definitions=defs, resources=defs.resources
        )
    )
    assert len([a for a in webhook if a["asset_key"] == "session_ohlc_daily"]) == 1


@pytest.fixture
def hanging_webhook(monkeypatch) -> Iterator[list[float]]:
    """A webhook that accepts every POST and never answers (issue 12, fault 5). Yields the
    times the requests arrived."""
    arrived: list[float] = []
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            arrived.append(time.monotonic())
            release.wait(60)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("MKT_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook/T0K")
    yield arrived
    release.set()
    server.shutdown()
    server.server_close()


def test_a_hanging_webhook_costs_the_freshness_tick_a_fixed_budget(
    data_dir, instance, monkeypatch, hanging_webhook
):
    """A webhook that accepts and never answers once cost ~17 s an alert, so a tick with
    several stale assets passed Dagster's 60 s sensor limit, recorded no freshness result and
    re-sent its first alerts every tick. Now the tick's alerts share a budget (3 s here): the
    tick ends, every asset's freshness result is recorded, the stale ones are in the cursor,
    and the next tick sends nothing again."""
    from mkt_platform.defs.monitoring import freshness

    monkeypatch.setattr(freshness, "TICK_BUDGET_SECONDS", 3.0)
    defs = build_definitions()
    at(monkeypatch, datetime(2023, 2, 23, 10, 20, tzinfo=UTC))
    assert pull(defs, instance, KLINES_1H, "2023-02-23").success
    at(monkeypatch, datetime(2023, 2, 24, 12, tzinfo=UTC))

    started = time.monotonic()
    context = dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources)
    result = defs.resolve_sensor_def("freshness_sensor")(context)
    elapsed = time.monotonic() - started
    events = {e.asset_key: e for e in result.asset_events}
    stale = json.loads(result.cursor)["stale"]
    assert len(stale) >= 3, stale  # several alerts were due in this one tick
    assert "binance_klines_1h" in stale and not events[KLINES_1H].passed
    assert len(events) == len(freshness.freshness_rules(raw_datasets())), "every result recorded"
    assert 1 <= len(hanging_webhook) <= 2
    assert elapsed < 3.0 + 8, f"the tick took {elapsed:.1f}s"

    posts = len(hanging_webhook)
    context = dg.build_sensor_context(
        instance=instance, cursor=result.cursor, definitions=defs, resources=defs.resources
    )
    again = defs.resolve_sensor_def("freshness_sensor")(context)
    assert json.loads(again.cursor)["stale"] == stale
    assert len(hanging_webhook) == posts, "no alert is sent a second time"


def test_drift_sensor_ticks_while_a_check_is_only_planned(data_dir, instance):
    """Regression (issue 14): while a run is in progress, the latest record of a column
    schema change check is only planned; the drift sensor's tick failed on it with
    ``'AssetCheckEvaluationPlanned' object has no attribute 'passed'``. A planned check is
    no drift; the tick goes on."""
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (
        AssetCheckEvaluationPlanned,
    )
    from dagster._core.events import DagsterEvent, DagsterEventType
    from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

    run = instance.add_run(DagsterRun(job_name="in_progress", status=DagsterRunStatus.STARTED))
    instance.report_dagster_event(
        DagsterEvent(
            event_type_value=DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED.value,
            job_name=run.job_name,
            event_specific_data=AssetCheckEvaluationPlanned(
                asset_key=KLINES_1H, check_name="column_schema_change"
            ),
        ),
        run_id=run.run_id,
    )
    defs = build_definitions()
    context = dg.build_sensor_context(instance=instance, definitions=defs, resources=defs.resources)
    result = defs.resolve_sensor_def("schema_drift_sensor")(context)
    assert json.loads(result.cursor)["reported"] == []
