"""The code server's run workers (mkt_platform/code_server.py): forked from a forkserver that
imported the platform. The deployment test (tests/test_deployment.py) runs the server itself,
sees its runs' processes forked from the forkserver, and kills the forkserver mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mkt_platform.code_server import PRELOAD, run_worker_context
from mkt_platform.lib.runs import process_alive
from tests.test_deployment import forkservers_of, free_port


def _sleep(report) -> None:
    report.put(os.getpid())
    time.sleep(60)


def test_a_forked_run_dies_with_the_forkserver():
    """Killed with a run in flight, the forkserver takes the run's process with it (the
    server, which learns a run's end from the forkserver, takes the run for dead: it must not
    go on unseen); a plain forkserver child would be left running, adopted by init."""
    from multiprocessing import forkserver

    context = run_worker_context()
    report = context.Queue()
    run = context.Process(target=_sleep, args=(report,))
    run.start()
    pid = report.get(timeout=120)
    server = forkserver._forkserver._forkserver_pid
    assert process_alive(pid)
    os.kill(server, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_alive(pid)
    # The run's end reaches this process when the last of the forkserver's threads (its
    # imports start native ones) has closed the status pipe, which may be a moment after the
    # run died: a server learns it at its next poll.
    run.join(timeout=10)
    assert not run.is_alive()


def test_the_preload_starts_no_thread_and_writes_nothing(tmp_path):
    """What the forkserver does before forking runs is safe to fork (one Python thread, no
    connection) and touches nothing of the settings' places (each run opens them): done with
    settings that would make any reader fail, it leaves one Python thread (the native ones of
    its libraries, e.g. jemalloc's, are theirs to re-create after a fork), creates none of their
    folders, holds the modules a run needs (Dagster, dbt's runner and adapter, the code
    location's modules) and the definitions it built for the runs."""
    env = {
        **os.environ,
        "MKT_WAREHOUSE": "not-a-warehouse",
        "MKT_DATA_DIR": str(tmp_path / "missing" / "data"),
        "MKT_INSTRUMENTS_FILE": str(tmp_path / "missing.yaml"),
        "DAGSTER_HOME": str(tmp_path / "missing_home"),
    }
    script = (
        "import json, sys, threading\n"
        f"for name in {list(PRELOAD)!r}: __import__(name)\n"
        "from mkt_platform import definitions\n"
        "print(json.dumps({'threads': threading.active_count(), 'modules': sorted(sys.modules),"
        " 'prebuilt': definitions.prebuilt is not None}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded["threads"] == 1
    modules = set(loaded["modules"])
    for needed in (
        "dagster",
        "dagster_dbt",
        "dbt.cli.main",
        "dbt.adapters.duckdb.impl",
        "mkt_platform.definitions",
        "mkt_platform.defs.registry",
        "mkt_platform.defs.binance.datasets",
        "mkt_platform.lib.dbt_in_process",
    ):
        assert needed in modules, needed
    assert loaded["prebuilt"], done.stderr[-2000:]
    assert not (tmp_path / "missing").exists() and not (tmp_path / "missing_home").exists()


#: Run as a script by the test below: a run forked as the code server forks one reports the
#: definitions it loads; then this process (the server's) builds its own.
_LOAD_DEFINITIONS = """
import json, sys

from mkt_platform.code_server import run_worker_context


def summary(defs):
    repository = defs.get_repository_def()
    graph = repository.asset_graph
    return {
        "assets": sorted(key.to_user_string() for key in graph.get_all_asset_keys()),
        "checks": sorted(str(key) for key in graph.asset_check_keys),
        "jobs": sorted(job.name for job in repository.get_all_jobs()),
        "schedules": sorted(schedule.name for schedule in repository.schedule_defs),
        "sensors": sorted(sensor.name for sensor in repository.sensor_defs),
    }


def run(report):
    import gc

    from dagster._core.definitions.reconstruct import ReconstructableRepository

    from mkt_platform import definitions
    from mkt_platform.lib import dbt_in_process

    # As Dagster's run worker loads the code location: from its code pointer.
    repository = ReconstructableRepository.for_module("mkt_platform.definitions", "defs")
    loaded = definitions.defs()
    report.put({
        "forkservers": loaded is definitions.prebuilt,
        # and the dbt manifest its forkserver parsed, for the run's first dbt command
        "preparsed": dbt_in_process._preparsed is not None,
        "run_worker_loads_it": repository.get_definition() is loaded.get_repository_def(),
        # what the forkserver holds is out of the run's collections
        "frozen": gc.get_freeze_count(),
        "collected": len(gc.get_objects()),
        **summary(loaded),
    })


if __name__ == "__main__":
    context = run_worker_context()
    report = context.Queue()
    process = context.Process(target=run, args=(report,))
    process.start()
    forked = report.get(timeout=120)
    process.join()
    from mkt_platform import definitions

    own = summary(definitions.defs())
    from mkt_platform.lib import dbt_in_process

    print(json.dumps({
        "forked": forked,
        "own": own,
        "prebuilt_here": definitions.prebuilt is not None,
        "preparsed_here": dbt_in_process._preparsed is not None,
    }))
"""


def test_a_forked_run_loads_the_definitions_its_forkserver_built(tmp_path):
    """A run forked by the code server loads the definitions its forkserver built once, from
    the server's environment (no build of its own), and they are the ones the server builds:
    the same assets, checks, jobs, schedules and sensors. What the forkserver imported and
    built is frozen out of the run's garbage collections, and it parsed the dbt project for
    the run's first dbt command. Outside a forked run nothing is prebuilt nor parsed: the
    server builds its own."""
    script = tmp_path / "load_definitions.py"
    script.write_text(_LOAD_DEFINITIONS)
    env = {**os.environ, "MKT_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    forked = loaded["forked"]
    assert forked.pop("forkservers") is True
    assert forked.pop("run_worker_loads_it") is True
    assert forked.pop("preparsed") is True
    frozen, collected = forked.pop("frozen"), forked.pop("collected")
    assert frozen > 10 * collected, (frozen, collected)
    assert loaded["prebuilt_here"] is False and loaded["preparsed_here"] is False
    assert forked == loaded["own"]
    assert "mkt_automation_sensor" in forked["sensors"]
    assert "session_ohlc_daily" in forked["assets"]


def test_a_failing_preload_is_logged_and_only_slows_the_runs(tmp_path, monkeypatch, capsys):
    """A preload that raises (not an ImportError, which Python's forkserver would ignore:
    any other error would kill the forkserver at each start, and no run would start) is
    written to the log and goes no further."""
    from mkt_platform.run_worker_modules import preload

    (tmp_path / "broken_at_import.py").write_text("raise RuntimeError('settings file unreadable')")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert preload(("json", "broken_at_import"), (), ()) is False
    err = capsys.readouterr().err
    assert "preloading the runs' modules failed" in err
    assert "RuntimeError: settings file unreadable" in err
    assert preload(("json",), (), ("dbt.task.test.TestResultData",)) is True


def test_a_failing_prebuild_is_logged_and_each_run_builds_its_own(monkeypatch, capsys):
    """Definitions that fail to build in the forkserver are reported to the log and not
    handed to the runs: each run builds its own (and fails there with its own error)."""
    from mkt_platform import definitions
    from mkt_platform.run_worker_modules import prebuild

    def broken() -> None:
        raise RuntimeError("instruments file unreadable")

    monkeypatch.setattr(definitions, "build_definitions", broken)
    assert prebuild() is False
    err = capsys.readouterr().err
    assert "building the definitions for the runs failed" in err
    assert "RuntimeError: instruments file unreadable" in err
    assert definitions.prebuilt is None


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_the_server_stops_on_sigterm_with_its_forkserver(tmp_path):
    """Started in the background of a script (SIGINT ignored, which Dagster's server would
    also make of SIGTERM), the server stops on SIGTERM, and its forkserver (started with it)
    goes with it."""

    env = {**os.environ, "MKT_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(tmp_path)}
    command = [str(Path(sys.executable).parent / "mkt-platform"), "code-server"]
    server = subprocess.Popen(
        [*command, "--module-name", "mkt_platform.definitions", "--port", str(free_port())],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_ignore_sigint,
    )
    try:
        deadline = time.monotonic() + 120
        forkservers: list[int] = []
        while not forkservers and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.2)
            forkservers = forkservers_of(server.pid)
        assert forkservers, "no forkserver started with the server"
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) is not None
        deadline = time.monotonic() + 10
        while process_alive(forkservers[0]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not process_alive(forkservers[0])
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_a_failing_preparse_is_logged_and_each_runs_dbt_parses(monkeypatch, capsys):
    """A dbt project the forkserver cannot parse (here: a warehouse kind the profile does not
    know) is reported to the log, and no manifest is handed to the runs: each run's dbt
    parses the project itself (and fails there with dbt's own error)."""
    from mkt_platform.lib import dbt_in_process
    from mkt_platform.run_worker_modules import preparse

    monkeypatch.setenv("MKT_WAREHOUSE", "not-a-warehouse")
    assert preparse() is False
    err = capsys.readouterr().err
    assert "parsing the dbt project for the runs failed" in err
    assert "not-a-warehouse" in err
    assert dbt_in_process._preparsed is None


#: A forkserver's preparation (one that takes a minute), in a child of a short-lived parent.
_PREPARING = """
import sys, time
from mkt_platform.run_worker_modules import ended_with_the_server
with ended_with_the_server():
    print("preparing", flush=True)
    time.sleep(60)
print("prepared", flush=True)
"""

#: The server: names itself to the forkserver as mkt-platform code-server does, starts it,
#: waits until it is preparing (or not at all), and dies.
_SERVER = """
import os, subprocess, sys, time
from mkt_platform.run_worker_modules import SERVER_PID_ENV
os.environ[SERVER_PID_ENV] = str(os.getpid())
out, err = open(sys.argv[1], "w"), open(sys.argv[2], "w")
child = subprocess.Popen([sys.executable, "-c", sys.argv[3]], stdout=out, stderr=err)
print(child.pid, flush=True)
while sys.argv[4] == "wait" and "preparing" not in open(sys.argv[1]).read():
    time.sleep(0.05)
os._exit(0)
"""


@pytest.mark.parametrize(
    "dies", ["wait", "now"], ids=["while it prepares", "before the forkserver started"]
)
def test_a_forkserver_still_preparing_ends_when_its_server_is_gone(tmp_path, dies):
    """A server that dies while its forkserver still imports and builds (seconds on a loaded
    machine, before Python's forkserver watches its pipe) takes the forkserver with it: it
    stops within a second, says why on its log, and never finishes the preparation. So
    does one that dies before its forkserver's Python has even started (which then finds
    itself adopted by another process from its first instruction)."""
    out, err = tmp_path / "out", tmp_path / "err"
    server = subprocess.run(
        [sys.executable, "-c", _SERVER, str(out), str(err), _PREPARING, dies],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    forkserver = int(server.stdout)
    deadline = time.monotonic() + 10
    while process_alive(forkserver) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_alive(forkserver)
    assert out.read_text() == "preparing\n"
    assert "the server stopped while the forkserver was preparing" in err.read_text()


#: A forked run's after-fork hook, in a process whose recorded forkserver is ``sys.argv[1]``.
_FORKED = """
import os, sys
from mkt_platform import run_worker_modules
run_worker_modules._HOOK.forkserver = int(sys.argv[1])
run_worker_modules._RunWorker.die_with_the_forkserver(run_worker_modules._HOOK)
# and a process it forks in turn would die with it, not with the forkserver
print("the run goes on", run_worker_modules._HOOK.forkserver == os.getpid(), flush=True)
"""


def test_a_run_forked_just_before_its_forkserver_died_ends_at_once():
    """The forkserver dies between a fork and the run's request to die with it (which then
    never comes true): the run's after-fork hook finds itself adopted and ends it (137), so
    that it does not go on behind the server, which takes it for dead. With its forkserver
    alive, the run goes on."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    for forkserver, code, said in ((gone.pid, 137, ""), (os.getpid(), 0, "the run goes on True\n")):
        run = subprocess.run(
            [sys.executable, "-c", _FORKED, str(forkserver)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (run.returncode, run.stdout) == (code, said), run.stderr
