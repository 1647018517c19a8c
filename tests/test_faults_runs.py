"""Faults of runs: a CLI killed during its dbt step, and a CLI waiting for the warehouse pool.

Issue 12, fault 1: a CLI run killed with ``kill -9`` during dbt stayed STARTED and kept its
``duckdb_warehouse`` slot; every later ``mkt-platform materialize`` then hung at its dbt step,
ignoring Ctrl-C and SIGTERM, and the orphaned dbt kept writing. Each test runs the real CLI
as a process against the replay of the recorded data.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from contextlib import AbstractContextManager
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.events import EngineEventData
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

from mkt_platform.lib.runs import process_alive
from tests.conftest import SHARED_DATA, instance_of, read_sessions

CLI = str(Path(sys.executable).parent / "mkt-platform")
POOL = "duckdb_warehouse"


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """A user's environment (no platform setting) but the data dir and the warehouse: these
    tests are about the DuckDB file's lock, and read it as a file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "MKT_"))}
    env.update(MKT_DATA_DIR=str(data_dir), MKT_WAREHOUSE="duckdb", PYTHONUNBUFFERED="1", **extra)
    return env


def cli_args(day: str = "2023-01-02") -> list[str]:
    """The main job for one day against the replay of the recordings, Binance's 1h klines and
    the marts over them only: the faults here are of the CLI's runs and its dbt step, which
    the other venues' pulls and marts would only make longer."""
    return [
        CLI, "materialize", "--start", day, "--end", day, "--only", "binance_klines_1h",
        "--replay", str(SHARED_DATA),
    ]  # fmt: skip


def ignore_sigint() -> None:
    """As a shell script's background job starts: SIGINT ignored (inherited across exec)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def start_cli(data_dir: Path, background: bool = False, **extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        cli_args(),
        env=cli_env(data_dir, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=ignore_sigint if background else None,
    )


def run_cli(data_dir: Path, timeout: float = 400, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        cli_args(), env=cli_env(data_dir, **extra), capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def read_until(proc: subprocess.Popen, marker: str, timeout: float = 240) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"CLI ended before {marker!r}:\n{''.join(lines)[-3000:]}")
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"no {marker!r} within {timeout}s:\n{''.join(lines)[-3000:]}")


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live child processes of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.append((int(entry.name), cmdline))
    return found


def instance_at(data_dir: Path) -> AbstractContextManager[dg.DagsterInstance]:
    return instance_of(data_dir / "dagster_home")


def dbt_building(data_dir: Path) -> bool:
    """Whether a dbt command of ``data_dir`` has started building: its log in the target
    folder of its invocation (``$MKT_DATA_DIR/dbt/runs/<asset>-<run>-<suffix>/dbt.log``)
    names a started node."""
    return any(
        "NodeStart" in log.read_text(errors="replace")
        for log in (data_dir / "dbt" / "runs").glob("*/dbt.log")
    )


@pytest.mark.slow
@pytest.mark.parametrize("in_process", ["1", "0"], ids=["dbt in process", "dbt child process"])
def test_a_cli_killed_during_dbt_frees_its_run_and_slot_at_the_next_start(tmp_path, in_process):
    """kill -9 of the CLI while dbt builds: nothing of dbt lives on (run in the CLI's process,
    it dies with it; run as a child, ``mkt-dbt``, the kernel kills it with its parent), and
    the next CLI marks the run left STARTED failed, frees its pool slot and builds."""
    data_dir = tmp_path / "data"
    first = start_cli(data_dir, MKT_DBT_IN_PROCESS=in_process)
    try:
        read_until(first, "dbt sessions")
        deadline = time.monotonic() + 120
        dbt = []
        while not dbt and time.monotonic() < deadline:
            if in_process == "1":
                dbt = [(first.pid, "the CLI")] if dbt_building(data_dir) else []
            else:
                dbt = [(p, c) for p, c in children(first.pid) if "build" in c and "dbt" in c]
            time.sleep(0.05)
        assert dbt, "dbt never started"
        assert in_process == "0" or not [
            c for _, c in children(first.pid) if Path(c.split()[0]).name in ("dbt", "mkt-dbt")
        ]
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    ((dbt_pid, _),) = dbt
    deadline = time.monotonic() + 5
    while process_alive(dbt_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_alive(dbt_pid), "the orphaned dbt must die with its run's process"

    with instance_at(data_dir) as instance:
        (stuck,) = instance.get_runs(
            dg.RunsFilter(statuses=[DagsterRunStatus.STARTED])
        )  # the fault as found: left STARTED, holding the pool
        assert stuck.run_id in instance.event_log_storage.get_concurrency_run_ids()

    second = run_cli(data_dir, MKT_POOL_WAIT_SECONDS="60")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert f"run {stuck.run_id}" in second.stdout
    assert "marked failed, its warehouse pool slot freed" in second.stdout
    with instance_at(data_dir) as instance:
        assert instance.get_run_by_id(stuck.run_id).status == DagsterRunStatus.FAILURE
        assert not instance.get_runs(dg.RunsFilter(statuses=[DagsterRunStatus.STARTED]))
        assert not instance.event_log_storage.get_concurrency_run_ids()
    sessions = read_sessions(data_dir, "session_start = timestamp '2023-01-02 08:00'")
    assert {s["instrument"] for s in sessions if s["source"] == "binance"} == {
        "BTCUSDT", "ETHUSDT", "SOLUSDT"
    }  # fmt: skip


def test_mkt_dbt_adopted_before_it_could_ask_to_die_with_its_parent_runs_no_dbt():
    """The run process that starts ``mkt-dbt`` dies while the wrapper's Python is still
    starting, before ``prctl(PR_SET_PDEATHSIG)`` could take effect (then no signal ever
    comes): the wrapper finds itself adopted by another process than the one named in
    ``MKT_DBT_PARENT_PID`` and exits with 137, as if killed, without starting dbt (which
    would build into the warehouse for a run declared dead)."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a process that started mkt-dbt and has died since
    env = {**os.environ, "MKT_DBT_PARENT_PID": str(gone.pid)}
    wrapper = Path(sys.executable).parent / "mkt-dbt"
    result = subprocess.run(
        [str(wrapper), "--version"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 137, result.stdout + result.stderr
    assert "dbt" not in result.stdout.lower()


def hold_pool(data_dir: Path, pid: int) -> str:
    """Make a run of a live process ``pid`` hold the warehouse pool, as a run of another
    CLI or of the daemon would."""
    (data_dir / "dagster_home").mkdir(parents=True)
    (data_dir / "dagster_home" / "dagster.yaml").write_text(
        (Path(__file__).resolve().parents[1] / "mkt_platform" / "dagster.yaml").read_text()
    )
    run_id = str(uuid.uuid4())
    with instance_at(data_dir) as instance:
        run = instance.add_run(
            DagsterRun(job_name="holder", run_id=run_id, status=DagsterRunStatus.STARTED)
        )
        instance.report_engine_event(
            f"Executing steps in process (pid: {pid})", run, EngineEventData.in_process(pid)
        )
        storage = instance.event_log_storage
        storage.set_concurrency_slots(POOL, 1)
        assert storage.claim_concurrency_slot(POOL, run_id, "holder_step").is_claimed
    return run_id


@pytest.mark.slow
def test_a_cli_waiting_for_the_pool_says_so_gives_up_and_stops_on_sigterm(tmp_path):
    """A live run of another process holds the warehouse pool: the CLI names it and how long
    it has waited, gives up after MKT_POOL_WAIT_SECONDS with a clear message (exit 1), and a
    second CLI, started in the background of a script, stops at once on SIGTERM (exit 130);
    the holder's run is left alone."""
    data_dir = tmp_path / "data"
    holder = subprocess.Popen(["sleep", "300"])
    try:
        run_id = hold_pool(data_dir, holder.pid)
        started = time.monotonic()
        done = run_cli(data_dir, timeout=300, MKT_POOL_WAIT_SECONDS="5")
        assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
        assert "waiting for pool 'duckdb_warehouse'" in done.stdout
        assert f"held by run {run_id} (pid {holder.pid})" in done.stdout
        gave_up = re.search(
            r"gave up after (\d+)s waiting for pool 'duckdb_warehouse'", done.stderr
        )
        assert gave_up and 5 <= int(gave_up[1]) <= 7, done.stderr[-2000:]
        assert "MKT_POOL_WAIT_SECONDS" in done.stderr
        assert time.monotonic() - started < 200

        # Started as a script's background job (SIGINT ignored): after its raw-pull run,
        # Dagster had set SIGTERM to SIGINT's handler, and SIGTERM was ignored too.
        waiting = start_cli(data_dir, background=True)
        read_until(waiting, "waiting for pool")
        sent = time.monotonic()
        waiting.send_signal(signal.SIGTERM)
        output, _ = waiting.communicate(timeout=30)
        assert waiting.returncode == 130, output
        assert "interrupted" in output
        assert time.monotonic() - sent < 20  # not the pool wait (an hour by default)
        with instance_at(data_dir) as instance:
            assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED
    finally:
        holder.kill()


@pytest.mark.slow
def test_clis_started_at_once_on_a_fresh_instance_all_open_it(tmp_path):
    """Issue 12, fault 7: two CLIs started at once on a fresh instance crashed creating the
    SQLite schema (``table secondary_indexes already exists``; here also seen as alembic's
    "more than one head"). Four processes open a fresh instance at the same moment, twice
    over: all succeed."""
    code = (
        "import sys, time; from mkt_platform.cli import open_instance\n"
        "time.sleep(max(0, float(sys.argv[1]) - time.time()))\n"
        "with open_instance() as instance: print(instance.get_runs_count())\n"
    )
    for attempt in range(2):
        home = tmp_path / f"home{attempt}"
        home.mkdir()
        (home / "dagster.yaml").write_text(
            (Path(__file__).resolve().parents[1] / "mkt_platform" / "dagster.yaml").read_text()
        )
        env = {**cli_env(tmp_path / "data"), "DAGSTER_HOME": str(home)}
        at = str(time.time() + 4)
        procs = [
            subprocess.Popen([sys.executable, "-c", code, at], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
            for _ in range(4)
        ]  # fmt: skip
        outcomes = [proc.communicate(timeout=120) for proc in procs]
        assert [proc.returncode for proc in procs] == [0] * 4, [err[-800:] for _, err in outcomes]
        assert [out.strip() for out, _ in outcomes] == ["0"] * 4


def test_only_runs_whose_process_is_gone_on_this_host_are_reaped(tmp_path):
    """The judgement of :func:`runs.reap_orphaned_runs`: a run is failed (and its pool slot
    freed) only when its process is dead and its host is this one; untagged runs (launched by
    the code server) only where the caller says they run beside it."""
    from mkt_platform.lib import runs

    dead = subprocess.Popen(["true"])
    dead.wait()
    live = subprocess.Popen(["sleep", "60"])
    try:
        with dg.instance_for_test() as instance:
            storage = instance.event_log_storage
            storage.set_concurrency_slots(POOL, 4)
            made = {}
            for name, pid, tags in [
                ("cli_dead", dead.pid, {runs.HOST_TAG: runs.this_host()}),
                ("cli_live", live.pid, {runs.HOST_TAG: runs.this_host()}),
                ("elsewhere_dead", dead.pid, {runs.HOST_TAG: "another-host"}),
                ("untagged_dead", dead.pid, {}),
            ]:
                run = instance.add_run(
                    DagsterRun(job_name=name, run_id=str(uuid.uuid4()), tags=tags,
                               status=DagsterRunStatus.STARTED)
                )  # fmt: skip
                instance.report_engine_event(
                    f"Executing steps in process (pid: {pid})", run, EngineEventData.in_process(pid)
                )
                assert storage.claim_concurrency_slot(POOL, run.run_id, "step").is_claimed
                made[name] = run.run_id

            by_cli = runs.reap_orphaned_runs(instance, untagged=False)
            assert [(o.job_name, o.pid, o.freed_slots) for o in by_cli] == [
                ("cli_dead", dead.pid, True)
            ]
            by_code_server = runs.reap_orphaned_runs(instance, untagged=True)
            assert [o.job_name for o in by_code_server] == ["untagged_dead"]
            status = {n: instance.get_run_by_id(r).status for n, r in made.items()}
            assert status == {
                "cli_dead": DagsterRunStatus.FAILURE,
                "cli_live": DagsterRunStatus.STARTED,
                "elsewhere_dead": DagsterRunStatus.STARTED,
                "untagged_dead": DagsterRunStatus.FAILURE,
            }
            assert storage.get_concurrency_run_ids() == {made["cli_live"], made["elsewhere_dead"]}
    finally:
        live.kill()


def test_a_process_that_exits_while_its_stat_is_read_is_gone(monkeypatch):
    """A process that passes ``kill(0)`` and exits before its /proc stat is read (reaped:
    ENOENT; or mid-read: ESRCH) is dead, not alive: the orphaned-run sensor fails its run at
    this tick, not the next. A zombie is dead; a live process is alive."""
    from mkt_platform.lib import runs

    live = subprocess.Popen(["sleep", "60"])
    zombie = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        while process_alive(zombie.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not process_alive(zombie.pid)  # not reaped yet: a zombie
        assert process_alive(live.pid)
        for gone in (FileNotFoundError, ProcessLookupError):

            def vanished(path, *args, gone=gone, **kwargs):
                raise gone(f"{path}: the process exited")

            monkeypatch.setattr(runs, "open", vanished, raising=False)
            assert not runs.process_alive(live.pid), gone
    finally:
        live.kill()
        live.wait()
        zombie.wait()


def test_a_reaped_run_is_tagged_will_retry_before_its_failure_is_written(monkeypatch):
    """The retry daemon reads failure events and may read one before the run's status and
    tags are updated: the reaper tags the run first, so that the daemon's own judgement
    (``should_retry``) already says yes for the run as stored when the failure is written."""
    from dagster._core.storage.tags import WILL_RETRY_TAG
    from dagster._daemon.auto_run_reexecution.auto_run_reexecution import should_retry

    from mkt_platform.lib import runs

    dead = subprocess.Popen(["true"])
    dead.wait()
    overrides = {"run_retries": {"enabled": True, "max_retries": 2}}
    with dg.instance_for_test(overrides=overrides) as instance:
        run = instance.add_run(
            DagsterRun(job_name="dead", run_id=str(uuid.uuid4()), status=DagsterRunStatus.STARTED)
        )
        instance.report_engine_event(
            f"Executing steps in process (pid: {dead.pid})",
            run,
            EngineEventData.in_process(dead.pid),
        )
        seen = []
        report = instance.report_run_failed

        def report_run_failed(failing, message):
            stored = instance.get_run_by_id(failing.run_id)
            seen.append(
                (stored.status, stored.tags.get(WILL_RETRY_TAG), should_retry(stored, instance))
            )
            return report(failing, message)

        monkeypatch.setattr(instance, "report_run_failed", report_run_failed)
        (orphan,) = runs.reap_orphaned_runs(instance, untagged=True)
        assert orphan.run_id == run.run_id
        assert seen == [(DagsterRunStatus.STARTED, "true", True)]
        after = instance.get_run_by_id(run.run_id)
        assert after.status == DagsterRunStatus.FAILURE and after.tags[WILL_RETRY_TAG] == "true"
