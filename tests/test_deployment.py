"""Issue 6: the deployment's services, run natively (no Docker engine here) against the
PostgreSQL at 127.0.0.1:5432, and docker-compose.yml checked to run the same commands.

The slow test starts the code server, the webserver and the daemon with deploy/dagster.yaml
on a fresh database, launches a backfill of 62 raw partitions and the 30 daily sessions over
them through the webserver's GraphQL API, kills the daemon mid-backfill and starts it again,
and then reads the run records: every run succeeded, the runs reached the run limit in
parallel, no two warehouse-writing runs overlapped, and every partition was materialized once.
Last, it kills the forkserver that forked a run's process (mkt-platform code-server) and
sees the run's process die with it, the run failed and retried successfully.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import httpx
import pytest
import yaml
from dagster._core.events import DagsterEventType
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES
from dagster._grpc.client import DagsterGrpcClient

from mkt_platform import warehouse as warehouse_db
from mkt_platform.definitions import build_definitions
from mkt_platform.lib.runs import process_alive
from tests.conftest import PG, REPO

#: What each service runs, natively here and in docker-compose.yml (the compose test below
#: holds the file to these). Listen addresses and ports come from the environment
#: (DAGSTER_GRPC_*, DAGSTER_WEBSERVER_*, MKT_API_*, DBT_HOST), never from the command.
COMMANDS = {
    "init": ["dagster", "instance", "concurrency", "set", "duckdb_warehouse", "1"],
    "code": ["mkt-platform", "code-server", "--module-name", "mkt_platform.definitions"],
    "webserver": ["dagster-webserver", "--workspace", "deploy/workspace.yaml"],
    "daemon": ["dagster-daemon", "run", "--workspace", "deploy/workspace.yaml"],
    "api": ["mkt-platform", "api"],
    "capture": ["mkt-platform", "capture"],
    "docs": [
        "dbt",
        "docs",
        "serve",
        "--project-dir",
        "dbt_project",
        "--profiles-dir",
        "dbt_project",
        "--no-browser",
        "--port",
        "8080",
    ],
}
DOCS_PORT = 8080
API_TOKEN = "deployment-test-" + "t" * 16
BIN = Path(sys.executable).parent

RAW = ("binance_klines_1h", "hyperliquid_candles_1h", "deribit_volatility_index")
RAW_RANGE = ("2023-01-01", "2023-01-31")  # 31 UTC days per raw asset: 5 runs of all three
SESSION_RANGE = ("2023-01-01", "2023-01-30")  # 30 daily sessions, each over two raw days
# A second warehouse asset, independent of the sessions (another @dbt_assets: its own runs),
# over a week of the DVOL it reads: whatever the timing, the backfill has warehouse runs
# of two assets that nothing but the pool keeps apart. (The daily sessions alone are one
# single-run asset: how many runs they take depends on when their raw days land; CI once saw
# one, which left the pool untested.)
UTC_DAILY_MART = "dvol_daily"
DVOL_RANGE = ("2023-01-01", "2023-01-07")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(
    what: str, ready: Callable[[], object], timeout: float, proc=None, interval: float = 0.5
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode} before it was ready")
        try:
            if ready():
                return
        except Exception:  # not up yet
            pass
        time.sleep(interval)
    raise AssertionError(f"{what} not ready after {timeout} s")


def compose_config(tmp_path: Path) -> dict:
    """docker-compose.yml as Debian's docker-compose resolves it (`docker-compose config`),
    with a .env of placeholder values for the names .env.example lists."""
    folder = tmp_path / "compose"
    folder.mkdir()
    shutil.copy(REPO / "docker-compose.yml", folder)
    names = re.findall(r"^#* *([A-Z][A-Z0-9_]*)=", (REPO / ".env.example").read_text(), re.M)
    (folder / ".env").write_text("".join(f"{name}=placeholder\n" for name in names))
    out = subprocess.run(
        ["docker-compose", "config"], cwd=folder, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_compose_services_run_the_native_commands(tmp_path):
    """`docker-compose config` accepts the file; each service runs the command the native
    test runs; PostgreSQL is healthy-checked, on a named volume and not published; the UI and
    the docs are published on 127.0.0.1 only (the UI through the authenticating proxy); the code server (which runs every run) mounts
    the one volume of the lake and the warehouse."""
    services = compose_config(tmp_path)["services"]
    assert set(services) == {"postgres", "proxy", *COMMANDS}
    for name, command in COMMANDS.items():
        assert services[name]["command"] == command, name
    postgres = services["postgres"]
    assert "ports" not in postgres and "healthcheck" in postgres
    assert postgres["volumes"][0].startswith("pgdata:/var/lib/postgresql/data")
    for name, port in (("proxy", 3000), ("docs", DOCS_PORT), ("api", 8000)):
        (published,) = services[name]["ports"]
        assert published.startswith(f"127.0.0.1:{port}:"), published
    assert "data:/data:rw" in services["code"]["volumes"]
    assert services["api"]["volumes"] == ["data:/data:ro"]
    assert services["code"]["environment"]["MKT_DATA_DIR"] == "/data"
    # The warehouse is a DuckLake whose catalog is in the instance's PostgreSQL database, the
    # password given to libpq apart (the catalog setting is shown in logs).
    for name in ("code", "daemon", "webserver", "api"):
        env = services[name]["environment"]
        assert env["MKT_WAREHOUSE"] == "ducklake", name
        assert env["MKT_DUCKLAKE_CATALOG"] == (
            "postgres:host=postgres port=5432 dbname=placeholder user=placeholder"
        )
        assert env["PGPASSWORD"] == "placeholder"
    assert services["api"]["environment"]["MKT_API_TOKEN"] == "placeholder"
    assert services["api"]["environment"]["MKT_API_HOST"] == "0.0.0.0"
    assert (
        services["daemon"]["environment"]["DAGSTER_BACKFILL_RETRY_DEFINITION_CHANGED_ERROR"] == "1"
    )
    daemon_needs = services["daemon"]["depends_on"]["init"]["condition"]
    assert daemon_needs == "service_completed_successfully"
    for name in ("webserver", "daemon"):
        assert services[name]["depends_on"]["code"]["condition"] == "service_healthy"
        env = services[name]["environment"]
        assert (env["DAGSTER_CODE_SERVER_HOST"], env["DAGSTER_CODE_SERVER_PORT"]) == (
            "code",
            "4000",
        )
    assert services["code"]["environment"]["DAGSTER_GRPC_PORT"] == "4000"
    # No secret in the file: PostgreSQL's credentials are the .env's placeholders.
    assert postgres["environment"]["POSTGRES_PASSWORD"] == "placeholder"


class Services:
    """The deployment's processes, started from ``COMMANDS`` in the repository root."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: dict[str, subprocess.Popen] = {}
        self.started = 0

    def start(self, name: str) -> subprocess.Popen:
        command = [str(BIN / COMMANDS[name][0]), *COMMANDS[name][1:]]
        self.started += 1
        log = open(self.logs / f"{self.started:02d}-{name}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.procs[name] = proc
        return proc

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            # The code server answers SIGTERM by waiting up to 60 s for its calls to end:
            # the test is over, nothing of it is needed.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM)


@pytest.fixture
def deployment(
    postgres_db, data_dir, tmp_path, monkeypatch
) -> Iterator[tuple[Services, Path, int, int]]:
    """Code server, webserver, daemon and read API on a fresh PostgreSQL database with the
    deployment's dagster.yaml; yields the services, DAGSTER_HOME and the webserver's and the
    API's ports."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    grpc_port, web_port, api_port = free_port(), free_port(), free_port()
    # The warehouse as in docker-compose.yml: a DuckLake, its catalog in the instance's
    # database (its data files under the test's MKT_DATA_DIR).
    catalog = f"postgres:host={PG['host']} port={PG['port']} dbname={postgres_db} user={PG['user']}"
    for key, value in (("MKT_WAREHOUSE", "ducklake"), ("MKT_DUCKLAKE_CATALOG", catalog)):
        monkeypatch.setenv(key, value)
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "DAGSTER_HOME": str(home),
        "DAGSTER_GRPC_HOST": "127.0.0.1",
        "DAGSTER_GRPC_PORT": str(grpc_port),
        "DAGSTER_CODE_SERVER_HOST": "127.0.0.1",
        "DAGSTER_CODE_SERVER_PORT": str(grpc_port),
        "DAGSTER_WEBSERVER_HOST": "127.0.0.1",
        "DAGSTER_WEBSERVER_PORT": str(web_port),
        "MKT_API_HOST": "127.0.0.1",
        "MKT_API_PORT": str(api_port),
        "MKT_API_TOKEN": API_TOKEN,
        # as docker-compose.yml sets it (test_compose_services_run_the_native_commands): a
        # backfill is retried, not failed, while the code server is down
        "DAGSTER_BACKFILL_RETRY_DEFINITION_CHANGED_ERROR": "1",
    }
    env.pop("DAGSTER_IS_DEV_CLI", None)
    logs = tmp_path / "logs"
    logs.mkdir()
    services = Services(env, logs)
    try:
        code = services.start("code")
        client = DagsterGrpcClient(port=grpc_port, host="127.0.0.1")

        def serving() -> bool:
            socket.create_connection(("127.0.0.1", grpc_port), timeout=1).close()
            return client.health_check_query() == "SERVING"

        wait_for("code server", serving, 180, code)
        web = services.start("webserver")
        wait_for(
            "webserver",
            lambda: httpx.get(f"http://127.0.0.1:{web_port}/server_info").status_code == 200,
            180,
            web,
        )
        assert stop_schedules_and_sensors(web_port) >= 5
        assert services.start("init").wait(timeout=120) == 0
        services.procs.pop("init")
        services.start("daemon")
        services.start("api")
        yield services, home, web_port, api_port
    finally:
        services.stop_all()
        for log in sorted(logs.glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-15:]
            print(f"--- {log.name}\n" + "\n".join(tail))


LAUNCH = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}
"""


INSTIGATORS = """
{ repositoriesOrError { ... on RepositoryConnection { nodes {
    schedules { id name } sensors { id name } } } } }
"""
STOP = """
mutation($id: String, $isSchedule: Boolean!) {
  stopRunningSchedule(id: $id) @include(if: $isSchedule) { __typename }
  stopSensor(id: $id) @skip(if: $isSchedule) { __typename }
}
"""


def graphql(web_port: int, query: str, variables: dict | None = None) -> dict:
    answer = httpx.post(
        f"http://127.0.0.1:{web_port}/graphql",
        json={"query": query, "variables": variables or {}},
        timeout=120,
    ).json()
    assert "errors" not in answer, answer["errors"]
    return answer["data"]


#: Sensors that launch no run of their own and keep the platform healthy: left running.
KEEP_RUNNING = ("orphaned_run_sensor",)


def stop_schedules_and_sensors(web_port: int) -> int:
    """Turn every schedule and sensor off through the API (as an operator would for a
    controlled backfill), so that the run records hold the backfill's runs alone; the
    orphaned-run sensor, which launches nothing, stays on."""
    (repository,) = graphql(web_port, INSTIGATORS)["repositoriesOrError"]["nodes"]
    assert set(KEEP_RUNNING) <= {sensor["name"] for sensor in repository["sensors"]}
    for kind in ("schedules", "sensors"):
        for instigator in repository[kind]:
            if instigator["name"] in KEEP_RUNNING:
                continue
            variables = {"id": instigator["id"], "isSchedule": kind == "schedules"}
            answer = graphql(web_port, STOP, variables)
            assert all("Error" not in v["__typename"] for v in answer.values()), answer
    return len(repository["schedules"]) + len(repository["sensors"])


def launch_backfill(web_port: int, selection: dict[str, tuple[str, str]]) -> str:
    params = {
        "title": "deployment test: 31 days of raw candles and their daily sessions",
        "partitionsByAssets": [
            {"assetKey": {"path": [key]}, "partitions": {"range": {"start": lo, "end": hi}}}
            for key, (lo, hi) in selection.items()
        ],
    }
    result = graphql(web_port, LAUNCH, {"params": params})["launchPartitionBackfill"]
    assert result["__typename"] == "LaunchBackfillSuccess", result
    return result["backfillId"]


RUN = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}
"""


def launch_run(web_port: int, asset: str, partition: str) -> str:
    """A run of one asset partition, as the UI's "Materialize" launches it (queued)."""
    params = {
        "selector": {
            "repositoryLocationName": "mkt_platform",
            "repositoryName": "__repository__",
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": [asset]}],
        },
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
    }
    result = graphql(web_port, RUN, {"params": params})["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return result["run"]["runId"]


def run_worker_pid(instance: dg.DagsterInstance, run_id: str) -> int:
    """The pid of a run's process, from the engine event the code server logs on launch
    (0 while there is none yet)."""
    for entry in instance.all_logs(run_id):
        found = re.search(r"Started process for run \(pid: (\d+)\)", entry.message or "")
        if found:
            return int(found.group(1))
    return 0


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (empty when there is no such
    process, or one that exits while it is read: ESRCH): the state first, then the parent's
    pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return []


def parent_pid(pid: int) -> int:
    """The parent of process ``pid`` (0 when there is no such process)."""
    fields = _stat(pid)
    return int(fields[1]) if fields else 0


def command_line(pid: int) -> str:
    """Process ``pid``'s command line ("" when there is no such process, or it exits while it
    is read)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def forkservers_of(pid: int) -> list[int]:
    """The multiprocessing forkservers that process ``pid`` started and that still run."""
    return [
        child
        for child in map(int, filter(str.isdigit, os.listdir("/proc")))
        if parent_pid(child) == pid and "multiprocessing.forkserver" in command_line(child)
    ]


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one moment (an end and a start at the same time: apart)."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    most = current = 0
    for _, step in edges:
        current += step
        most = max(most, current)
    return most


def retried_to_success(instance: dg.DagsterInstance, run_id: str) -> bool:
    """Whether a failed run was launched again (run_retries), and a retry succeeded."""
    children = instance.get_runs(dg.RunsFilter(tags={"dagster/parent_run_id": run_id}))
    return any(
        child.status == dg.DagsterRunStatus.SUCCESS
        or (
            child.status == dg.DagsterRunStatus.FAILURE
            and retried_to_success(instance, child.run_id)
        )
        for child in children
    )


@pytest.mark.slow
def test_parallel_backfill_survives_a_daemon_kill_and_a_code_server_outage(
    deployment, data_dir, replay, monkeypatch
):
    """The backfill goes on through a SIGKILLed daemon (restarted 5 s later) and then a
    SIGKILLed code server, with the runs it was executing (restarted 5 s later: issue 12,
    fault 2): launches that found no code server are queued again, runs whose process died
    with it are failed by the orphaned-run sensor and launched again, and in the end every
    partition has exactly one materialization from a successful run, no run is left
    unfinished, and the backfill succeeds, with no manual step."""
    services, home, web_port, api_port = deployment
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    defs = build_definitions()
    session_keys = defs.get_assets_def(dg.AssetKey("session_ohlc_daily")).keys
    graph = defs.resolve_asset_graph()
    dbt_keys = {
        # (the captured streams are external assets: no pools at all)
        key
        for key in graph.get_all_asset_keys()
        if "duckdb_warehouse" in (graph.get(key).pools or ())
    }
    selection = {key: RAW_RANGE for key in RAW}
    selection |= {key.to_user_string(): SESSION_RANGE for key in session_keys}
    selection[UTC_DAILY_MART] = DVOL_RANGE
    expected = {}
    for key, (lo, hi) in selection.items():
        partitions_def = defs.get_assets_def(dg.AssetKey(key)).partitions_def
        keys = partitions_def.get_partition_keys_in_range(dg.PartitionKeyRange(lo, hi))
        expected[dg.AssetKey(key)] = set(keys)
    assert sum(len(expected[dg.AssetKey(k)]) for k in RAW) == 93

    backfill_id = launch_backfill(web_port, selection)
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        limit = instance.get_concurrency_config().run_queue_config.max_concurrent_runs
        assert limit == 4  # deploy/dagster.yaml
        assert instance.event_log_storage.get_concurrency_info("duckdb_warehouse").slot_count == 1
        runs_filter = dg.RunsFilter(tags={"dagster/backfill": backfill_id})

        # Kill the daemon once some runs are done and others are still to come.
        wait_for(
            "first successful runs",
            lambda: (
                instance.get_runs_count(
                    dg.RunsFilter(tags=runs_filter.tags, statuses=[dg.DagsterRunStatus.SUCCESS])
                )
                >= 2
            ),
            600,
        )
        assert instance.get_backfill(backfill_id).status == BulkActionStatus.REQUESTED
        services.kill("daemon")
        killed_at = time.time()
        time.sleep(5)
        services.start("daemon")

        # Then the code server, with the run processes it started, while runs are in flight.
        started = dg.RunsFilter(tags=runs_filter.tags, statuses=[dg.DagsterRunStatus.STARTED])
        wait_for(
            "runs in flight after the daemon's restart",
            lambda: (
                instance.get_runs_count(
                    dg.RunsFilter(tags=runs_filter.tags, statuses=[dg.DagsterRunStatus.SUCCESS])
                )
                >= 4
                and instance.get_runs_count(started) >= 1
            ),
            600,
            interval=0.2,
        )
        launched = dg.RunsFilter(
            tags=runs_filter.tags,
            statuses=[dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED],
        )
        in_flight = {run.run_id for run in instance.get_runs(launched)}
        assert instance.get_backfill(backfill_id).status == BulkActionStatus.REQUESTED
        services.kill("code")
        # (and any run the daemon launched between that read and the kill)
        in_flight |= {run.run_id for run in instance.get_runs(launched)}
        time.sleep(5)
        services.start("code")

        try:  # within pytest's 900 s, so that a hang is named, not just timed out
            wait_for(
                "backfill completion",
                lambda: instance.get_backfill(backfill_id).status != BulkActionStatus.REQUESTED,
                540,
            )
        except AssertionError as hung:
            unfinished = instance.get_runs(dg.RunsFilter(statuses=list(NOT_FINISHED_STATUSES)))
            raise AssertionError(
                f"{hung}; runs: "
                f"{Counter(r.status.value for r in instance.get_runs(runs_filter))}; unfinished: "
                + "; ".join(
                    f"{r.run_id[:8]} {r.status.value} {sorted(r.asset_selection or ())[:3]}"
                    for r in unfinished
                )
            ) from None
        backfill = instance.get_backfill(backfill_id)
        assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS, backfill.status
        # No run is left unfinished (none holds a run slot or a pool slot).
        wait_for(
            "no unfinished run",
            lambda: not instance.get_runs(dg.RunsFilter(statuses=list(NOT_FINISHED_STATUSES))),
            120,
        )
        assert not instance.event_log_storage.get_concurrency_run_ids()

        every_run = instance.get_run_records()
        statuses = Counter(r.dagster_run.status for r in every_run)
        assert set(statuses) <= {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE}
        failed = [
            r.dagster_run for r in every_run if r.dagster_run.status != dg.DagsterRunStatus.SUCCESS
        ]
        # The runs that died with the code server (the ones in flight when it died, and none
        # other) were failed by the orphaned-run sensor, or, when their process died before it
        # reported its pid, by the daemon's run monitoring (start timeout, deploy/dagster.yaml);
        # each was run again to success.
        for run in failed:
            (failure,) = instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_FAILURE)
            assert "orphaned-run check" in failure.message or (
                "to start" in failure.message and "timed out" in failure.message
            ), (run.run_id, failure.message)
        assert {run.run_id for run in failed} <= in_flight
        for run in failed:
            assert retried_to_success(instance, run.run_id), (run.run_id, run.tags)
        # Schedules and sensors were off (but the orphaned-run sensor, which launches
        # nothing): the backfill's runs and their retries are all the runs there are.
        records = instance.get_run_records(runs_filter)
        assert len(every_run) == len(records)
        # Runs were submitted after the restart: the new daemon carried the backfill on.
        assert any(r.create_timestamp.timestamp() > killed_at for r in records)
        print(f"\ncode server killed with {len(in_flight)} run(s) in flight; {statuses}")

        records = [r for r in records if r.dagster_run.status == dg.DagsterRunStatus.SUCCESS]
        intervals = {r.dagster_run.run_id: (r.start_time, r.end_time) for r in records}
        assert 2 <= max_overlap(list(intervals.values())) <= limit
        warehouse_runs = [
            r.dagster_run for r in records if set(r.dagster_run.asset_selection or ()) & dbt_keys
        ]
        warehouse = [intervals[run.run_id] for run in warehouse_runs]
        raw = len(records) - len(warehouse)
        # Runs of both warehouse assets (the sessions and the DVOL mart), each asset's alone.
        built = [set(run.asset_selection) for run in warehouse_runs]
        assert any(keys & set(session_keys) for keys in built), built
        assert any(dg.AssetKey(UTC_DAILY_MART) in keys for keys in built), built
        assert not any(
            keys & set(session_keys) and dg.AssetKey(UTC_DAILY_MART) in keys for keys in built
        )
        assert raw >= limit
        assert max_overlap(warehouse) == 1, sorted(warehouse)

        print(
            f"\nbackfill {backfill_id}: {len(records)} runs ({raw} raw, {len(warehouse)} "
            f"warehouse), at most {max_overlap(list(intervals.values()))} at once, "
            f"{min(r.start_time for r in records):.0f}..{max(r.end_time for r in records):.0f}"
            f" ({max(r.end_time for r in records) - min(r.start_time for r in records):.0f} s)"
        )
        succeeded = set(intervals)
        for key, partitions in expected.items():
            events = instance.fetch_materializations(key, limit=10_000).records
            counts = Counter(e.partition_key for e in events if e.run_id in succeeded)
            assert set(counts) == partitions, key
            assert set(counts.values()) == {1}, (key, counts.most_common(3))

        # The read API serves the sessions dbt built into the DuckLake on PostgreSQL, to the
        # holder of the token only.
        with warehouse_db.connect() as con:
            per_instrument = con.execute(
                "select source, instrument, count(*) from marts.session_ohlc_daily "
                "where session_start >= '2023-01-01' and session_start < '2023-01-31' "
                "group by all"
            ).fetchall()
            candles = con.execute(
                "select distinct source, instrument from intermediate.int_candles_1h "
                "where open_time >= '2023-01-01 08:00:00+00' and open_time < '2023-01-31 08:00:00+00'"
            ).fetchall()
        # Every session of every instrument with candles, however the backfill split the dbt
        # assets over runs: the staging models are compiled into the table that reads them,
        # so a run that builds a mart without rebuilding int_candles_1h reads the table's
        # history, not a view baked for another run's window (found by this test: 12 of the
        # 90 sessions were there, before).
        assert candles and {(s, i) for s, i, _ in per_instrument} == set(candles)
        assert {n for _, _, n in per_instrument} == {30}, per_instrument
        sessions = 30 * len(candles)
        url = f"http://127.0.0.1:{api_port}/sessions/daily"
        params = {"start": SESSION_RANGE[0], "end": SESSION_RANGE[1], "limit": 10_000}
        assert httpx.get(url, params=params, timeout=60).status_code == 401
        # (the first read opens the DuckLake: its extensions and its catalog on PostgreSQL)
        answer = httpx.get(
            url, params=params, headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=60
        )
        assert answer.status_code == 200 and answer.json()["count"] == sessions

        # A run whose process dies is failed by the code server and retried by the daemon
        # (run_retries), and the retry succeeds. Here the process dies with the forkserver
        # that forked it (killed, or by the OOM killer): the run must not go on unseen, as
        # the server takes it for dead; the retry is forked by a new forkserver.
        # Binance's answers are held until the run's process is killed: it is still pulling
        # then, however fast the machine (a one-day pull takes about a second).
        gate = threading.Event()
        pulls = replay.request_count("binance")
        replay.mutate("binance", lambda _request, payload: (gate.wait(120), payload)[1])
        try:
            doomed = launch_run(web_port, "binance_klines_1h", "2023-03-02")
            wait_for(
                "it to pull", lambda: replay.request_count("binance") > pulls, 120, interval=0.1
            )
            worker = run_worker_pid(instance, doomed)
            # The run's process was forked by the code server's forkserver (mkt-platform
            # code-server), not spawned by the server itself.
            forkserver = parent_pid(worker)
            assert "multiprocessing.forkserver" in command_line(forkserver)
            assert parent_pid(forkserver) == services.procs["code"].pid
            os.kill(forkserver, signal.SIGKILL)
            wait_for(
                "the run's process to die with its forkserver",
                lambda: not process_alive(worker),
                30,
            )
        finally:
            replay.clear_mutations("binance")
            gate.set()
        wait_for(
            "the killed run to fail",
            lambda: instance.get_run_by_id(doomed).status == dg.DagsterRunStatus.FAILURE,
            120,
        )
        retries = dg.RunsFilter(tags={"dagster/parent_run_id": doomed})
        wait_for(
            "its retry to succeed",
            lambda: [r.status for r in instance.get_runs(retries)] == [dg.DagsterRunStatus.SUCCESS],
            180,
        )
        (retry,) = instance.get_runs(retries)
        assert retry.tags["dagster/retry_number"] == "1"
        assert retry.tags["dagster/partition"] == "2023-03-02"
        # The failed run did not go on behind the server's back (its process would have
        # finished the pull and reported success long before the retry did).
        assert instance.get_run_by_id(doomed).status == dg.DagsterRunStatus.FAILURE
        assert not instance.all_logs(doomed, of_type=DagsterEventType.RUN_SUCCESS)
        assert not instance.all_logs(doomed, of_type=DagsterEventType.ASSET_MATERIALIZATION)
        (renewed,) = forkservers_of(services.procs["code"].pid)
        assert renewed != forkserver
