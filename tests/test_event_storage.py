"""The embedded instance's event log (mkt_platform/lib/event_storage.py) stores a batch as
Dagster's SQLite storage stores its events one by one, and a batch that fails half-way leaves
nothing behind for Dagster's one-by-one retry to duplicate.

Both instances are real SQLite instances in temporary DAGSTER_HOMEs: the stock one with
Dagster's default storage, the other with the shipped mkt_platform/dagster.yaml.
"""

import os
import shutil
import sqlite3
from collections import Counter
from contextlib import AbstractContextManager
from pathlib import Path

import dagster as dg
import pytest

from mkt_platform.lib.event_storage import BatchingSqliteEventLogStorage
from mkt_platform.settings import EVENT_BATCH_SIZE_ENV, enable_event_batches
from tests.conftest import instance_of
from tests.test_deployment import wait_for

REPO = Path(__file__).resolve().parents[1]
PARTITIONS = dg.DailyPartitionsDefinition(start_date="2023-01-01", end_date="2023-01-11")
KEYS = [dg.AssetKey("a"), dg.AssetKey("b"), dg.AssetKey("c")]
CHECKS = [dg.AssetCheckKey(dg.AssetKey("a"), "positive"), dg.AssetCheckKey(dg.AssetKey("c"), "ok")]


@dg.multi_asset(
    specs=[dg.AssetSpec(key) for key in KEYS],
    check_specs=[dg.AssetCheckSpec(k.name, asset=k.asset_key) for k in CHECKS],
    partitions_def=PARTITIONS,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def three(context: dg.AssetExecutionContext):
    """Materializes ``a`` and ``b`` over the run's range and checks ``a``, then fails before
    ``c`` (whose check stays planned)."""
    yield dg.MaterializeResult(asset_key="a", metadata={"rows": 1})
    yield dg.AssetCheckResult(asset_key="a", check_name="positive", passed=True)
    yield dg.MaterializeResult(asset_key="b", metadata={"rows": 2})
    raise RuntimeError("c fails")


def open_instance(home: Path, shipped: bool) -> AbstractContextManager[dg.DagsterInstance]:
    home.mkdir()
    if shipped:
        shutil.copy(REPO / "mkt_platform" / "dagster.yaml", home / "dagster.yaml")
    else:
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return instance_of(home)


def run_and_read(instance: dg.DagsterInstance) -> dict:
    """One single-run backfill of all ten days, and what Dagster reads back from the store."""
    keys = PARTITIONS.get_partition_keys()
    result = dg.materialize(
        [three],
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": keys[0],
            "dagster/asset_partition_range_end": keys[-1],
        },
        raise_on_error=False,
    )
    assert not result.success
    storage = instance.event_log_storage
    read: dict = {
        "run log": Counter(
            e.dagster_event.event_type_value
            for e in instance.all_logs(result.run_id)
            if e.dagster_event is not None
        )
    }
    for key in KEYS:
        records = instance.fetch_materializations(key, limit=100).records
        latest = instance.get_latest_materialization_event(key)
        read[key.to_user_string()] = {
            "materialized": sorted(instance.get_materialized_partitions(key)),
            "records per partition": Counter(r.partition_key for r in records),
            "metadata": sorted(
                (r.partition_key, r.asset_materialization.metadata["rows"].value) for r in records
            ),
            "latest": latest.dagster_event.partition if latest else None,
            "planned but not materialized": sorted(
                storage.get_latest_asset_partition_materialization_attempts_without_materializations(
                    key
                )
            ),
        }
    for check_key in CHECKS:
        executions = storage.get_asset_check_execution_history(check_key, limit=100)
        read[check_key.to_user_string()] = Counter(
            (
                r.partition,
                r.status.value,
                r.run_id == result.run_id,
                r.event.dagster_event_type.value if r.event else None,
            )
            for r in executions
        )
    return read


def test_batched_writes_store_what_the_stock_storage_stores(tmp_path, monkeypatch):
    monkeypatch.delenv(EVENT_BATCH_SIZE_ENV, raising=False)
    with open_instance(tmp_path / "stock", shipped=False) as stock:
        expected = run_and_read(stock)

    enable_event_batches()
    batches: list[int] = []
    store_batch = BatchingSqliteEventLogStorage.store_event_batch

    def counted(self, events):
        batches.append(len(events))
        return store_batch(self, events)

    monkeypatch.setattr(BatchingSqliteEventLogStorage, "store_event_batch", counted)
    with open_instance(tmp_path / "shipped", shipped=True) as batched:
        assert isinstance(batched.event_log_storage, BatchingSqliteEventLogStorage)
        assert (
            Path(batched.event_log_storage._base_dir) == tmp_path / "shipped" / "history" / "runs"
        )
        got = run_and_read(batched)

    # The run planned 3 assets x 10 days and 2 checks (one batch), and materialized a and b (a
    # batch each).
    assert sorted(batches) == [10, 10, 32]
    assert got == expected
    # What the comparison covers is not empty: c's ten days are planned and never
    # materialized (the UI shows them failed), a's and b's are materialized once each.
    assert len(expected["c"]["planned but not materialized"]) == 10
    assert expected["a"]["records per partition"] == Counter(PARTITIONS.get_partition_keys())
    assert expected["run log"]["ASSET_MATERIALIZATION_PLANNED"] == 30
    assert expected["run log"]["ASSET_MATERIALIZATION"] == 20
    # Each check's planned event is a row per day; c's stay planned, a's evaluation is stored.
    assert expected["run log"]["ASSET_CHECK_EVALUATION_PLANNED"] == 2
    assert sum(expected["c:ok"].values()) == 10
    assert set(expected["c:ok"]) == {
        (day, "PLANNED", True, "ASSET_CHECK_EVALUATION_PLANNED")
        for day in PARTITIONS.get_partition_keys()
    }
    assert ("2023-01-05", "PLANNED", True, "ASSET_CHECK_EVALUATION_PLANNED") in expected[
        "a:positive"
    ]
    assert any(status == "SUCCEEDED" for _, status, _, _ in expected["a:positive"])


def test_a_batch_that_fails_half_way_is_stored_once_by_dagsters_retry(tmp_path, monkeypatch):
    """The index write of the first batch dies after some rows: its transaction rolls back,
    Dagster stores the events one by one, and no materialization is stored twice."""
    enable_event_batches()
    store_asset_event = BatchingSqliteEventLogStorage._store_asset_event
    calls = {"n": 0}

    def dies_once(self, conn, event, event_id):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("disk I/O error (injected)")
        return store_asset_event(self, conn, event, event_id)

    monkeypatch.setattr(BatchingSqliteEventLogStorage, "_store_asset_event", dies_once)
    with open_instance(tmp_path / "home", shipped=True) as instance:
        got = run_and_read(instance)
    assert calls["n"] > 5  # the injected failure happened, and writing went on after it
    for key in ("a", "b"):
        assert got[key]["records per partition"] == Counter(PARTITIONS.get_partition_keys())
    assert len(got["c"]["planned but not materialized"]) == 10
    assert got["run log"]["ASSET_MATERIALIZATION_PLANNED"] == 30
    assert got["run log"]["ASSET_MATERIALIZATION"] == 20


@pytest.mark.parametrize("preset", [None, "0"])
def test_enable_event_batches_keeps_a_value_already_set(preset):
    environ = {} if preset is None else {EVENT_BATCH_SIZE_ENV: preset}
    enable_event_batches(environ)
    assert environ[EVENT_BATCH_SIZE_ENV] == ("1000" if preset is None else "0")


def run_database_fds(base: Path) -> int:
    """How many of this process's file descriptors are open on a run's event database."""
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(base)) and target.endswith(".db") and "index.db" not in target:
            count += 1
    return count


def test_the_kept_index_connection_hides_no_event_and_is_closed_with_the_instance(tmp_path):
    """The storage keeps a connection to the index between events (its WAL is not
    checkpointed away after each event), another process's reader sees each asset event as
    soon as it is stored, and disposing the instance checkpoints and closes it: the index file
    alone then holds every event. A run's own database is closed after each event, as
    Dagster's storage does (its watcher wakes on that file's changes)."""
    with open_instance(tmp_path / "home", shipped=True) as writer:
        base = Path(writer.event_log_storage._base_dir)
        with instance_of(tmp_path / "home") as reader:
            for n in range(3):
                writer.report_runless_asset_event(
                    dg.AssetMaterialization("kept", metadata={"n": n})
                )
                latest = reader.get_latest_materialization_event(dg.AssetKey("kept"))
                assert latest.asset_materialization.metadata["n"].value == n
        assert (base / "index.db-wal").exists()  # the kept connection's log
        assert run_database_fds(base) == 0  # no run's database stays open
    assert not (base / "index.db-wal").exists()
    with sqlite3.connect(f"file:{base / 'index.db'}?mode=ro", uri=True) as con:
        stored = con.execute("select count(*) from event_logs where asset_key like '%kept%'")
        assert stored.fetchone() == (3,)


def test_a_forked_child_opens_its_own_connection_and_the_parent_loses_nothing(tmp_path):
    """A child forked while the storage holds the index's connection writes through its own
    (two processes on one SQLite connection corrupt the database) and may dispose its
    instance without closing the parent's: the parent's later events are stored and the
    index is whole."""
    key = dg.AssetKey("forked")

    def materialize(who: str) -> None:
        instance.report_runless_asset_event(dg.AssetMaterialization(key, metadata={"by": who}))

    with open_instance(tmp_path / "home", shipped=True) as instance:
        storage = instance.event_log_storage
        materialize("parent before")
        parent_engine = storage._engine()
        pid = os.fork()
        if pid == 0:  # the child: report by exit code only
            code = 1
            try:
                own = storage._engine() is not parent_engine
                materialize("child")
                instance.dispose()
                code = 0 if own else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert storage._engine() is parent_engine
        materialize("parent after")
        base = Path(storage._base_dir)
        with instance_of(tmp_path / "home") as reader:
            records = reader.fetch_materializations(key, limit=10, ascending=True).records
            by = [r.asset_materialization.metadata["by"].value for r in records]
            assert by == ["parent before", "child", "parent after"]
    with sqlite3.connect(base / "index.db") as con:
        assert con.execute("pragma integrity_check").fetchone() == ("ok",)


def test_a_watcher_sees_each_event_while_the_writer_keeps_its_connection(tmp_path):
    """The UI's live run log (``watch_event_logs``) wakes on a change of the run's database
    file, while the writer's instance stays open: the storage keeps only the index's
    connection, so a run's database is closed (and its WAL checkpointed into the file) after
    each event, and the watcher gets each event as it is stored, not at the end of the run.
    (Keeping the run's connection too changed only the WAL, and the watcher saw nothing.)"""
    run_id = "2" * 8 + "-0000-0000-0000-" + "2" * 12
    seen: list[str] = []

    def callback(entry, cursor):
        seen.append(entry.dagster_event.message)

    with open_instance(tmp_path / "home", shipped=True) as writer:
        writer.report_engine_event("first", job_name="j", run_id=run_id)
        with instance_of(tmp_path / "home") as webserver:
            webserver.watch_event_logs(run_id, None, callback)
            try:
                for event in ("event 0", "event 1", "event 2"):
                    writer.report_engine_event(event, job_name="j", run_id=run_id)
                    # This event itself, before the next is written (an earlier one may
                    # still be arriving: the first batch can come late).
                    wait_for(event, lambda event=event: event in seen, 10, interval=0.05)
            finally:
                webserver.end_watch_event_logs(run_id, callback)
    assert seen[-3:] == ["event 0", "event 1", "event 2"]


def test_events_of_many_runs_are_stored_through_the_kept_engines_of_the_latest(tmp_path):
    """Events written one by one to the databases of more runs than the storage keeps
    engines for (an engine per run, no pool: Dagster's, kept instead of built again at each
    event) are each stored in their run's database, read back by another instance in order;
    no run's database is left open, and only the latest runs' engines are kept."""
    from mkt_platform.lib.event_storage import RUN_ENGINES

    runs = [f"{n:08d}-0000-0000-0000-{n:012d}" for n in range(RUN_ENGINES + 3)]
    with open_instance(tmp_path / "home", shipped=True) as writer:
        storage = writer.event_log_storage
        base = Path(storage._base_dir)
        for round_ in range(2):  # each run's database written twice, the runs interleaved
            for run_id in runs:
                writer.report_engine_event(f"{run_id} {round_}", job_name="j", run_id=run_id)
                assert run_database_fds(base) == 0
        assert list(storage._run_engines) == runs[-RUN_ENGINES:]
        with instance_of(tmp_path / "home") as reader:
            for run_id in runs:
                messages = [e.dagster_event.message for e in reader.all_logs(run_id)]
                assert messages == [f"{run_id} 0", f"{run_id} 1"]
    assert not storage._run_engines  # disposed with the instance


MANY_CHECKS = [dg.AssetCheckSpec(f"rule_{n}", asset="checked") for n in range(12)]


@dg.asset(check_specs=MANY_CHECKS)
def checked():
    """An asset with a dozen checks, as a dbt model with its data tests."""
    yield dg.MaterializeResult()
    for spec in MANY_CHECKS:
        yield dg.AssetCheckResult(check_name=spec.name, passed=True)


def test_the_index_schema_is_read_once_for_a_runs_check_results(tmp_path, monkeypatch):
    """Dagster asks whether the index has its check table before it stores each check result
    (reading the schema through an engine built for the question): the storage asks once,
    stores every result, and still answers no, asking again, for a table the index lacks."""
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    asked: Counter[str] = Counter()
    dagsters = SqliteEventLogStorage.has_table

    def counted(self, name: str) -> bool:
        asked[name] += 1
        return dagsters(self, name)

    monkeypatch.setattr(SqliteEventLogStorage, "has_table", counted)
    with open_instance(tmp_path / "home", shipped=True) as instance:
        result = dg.materialize([checked], instance=instance)
        assert result.success
        storage = instance.event_log_storage
        for spec in MANY_CHECKS:
            (stored,) = storage.get_asset_check_execution_history(spec.key, limit=5)
            assert (stored.status.value, stored.run_id) == ("SUCCEEDED", result.run_id)
        assert asked["asset_check_executions"] == 1
        assert not storage.has_table("no_such_table") and not storage.has_table("no_such_table")
        assert asked["no_such_table"] == 2
