"""dbt run in the process of its Dagster run (``MKT_DBT_IN_PROCESS=1``, the default;
``mkt_platform/lib/dbt_in_process.py``) against dbt run as a child process, as dagster-dbt
runs it (``0``): the same results, errors and files, the process left as it was, and a
command stopped mid-way as SIGINT stops a child.

The dbt commands run on an empty data directory: the project's seed (the NYSE calendar, from
``exchange_calendars``), and a build of every model, each reading an empty lake.
"""

from __future__ import annotations

import gc
import json
import os
import signal
from pathlib import Path

import duckdb
import pytest
from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation

from mkt_platform.lib.dbt import dbt_resource
from mkt_platform.lib.dbt_in_process import InProcessDbt

RESULT_EVENTS = {"LogSeedResult", "LogModelResult", "LogTestResult"}


def invoke(args: list[str], mode: str, monkeypatch: pytest.MonkeyPatch) -> DbtCliInvocation:
    """``dbt <args>`` through the platform's dbt resource, in process (``mode`` ``1``) or as
    a child (``0``), on the data directory of ``MKT_DATA_DIR`` (DuckDB creates the warehouse
    file, not its folder)."""
    Path(os.environ["MKT_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("MKT_DBT_IN_PROCESS", mode)
    return dbt_resource().cli(args, raise_on_error=False)


def outcome(invocation: DbtCliInvocation) -> tuple:
    """What a dbt command gave Dagster: its result events (name, node, status), its error
    messages, its exit code, and the statuses of its run_results.json."""
    events = [
        (e.raw_event["info"]["name"], e.raw_event["data"]["node_info"]["unique_id"],
         e.raw_event["data"]["status"])
        for e in invocation.stream_raw_events()
        if e.raw_event["info"]["name"] in RESULT_EVENTS
    ]  # fmt: skip
    code = invocation.process.wait()
    path = invocation.target_path / "run_results.json"
    statuses = (
        sorted((r["unique_id"], r["status"]) for r in json.loads(path.read_text())["results"])
        if path.exists()
        else None
    )
    return sorted(events), code, statuses, invocation.get_error() is not None


@pytest.mark.slow
def test_in_process_dbt_gives_what_the_child_gave_and_leaves_the_process_as_it_was(
    data_dir, monkeypatch
):
    environ, cwd = dict(os.environ), os.getcwd()
    child = outcome(invoke(["seed"], "0", monkeypatch))
    monkeypatch.setenv("MKT_DBT_IN_PROCESS", "1")
    environ["MKT_DBT_IN_PROCESS"] = "1"
    # With the garbage collector off: a successful command's DuckDB handles must go with
    # their last reference (no full collection follows it, 0.1-0.3 s a command).
    gc.disable()
    try:
        invocation = invoke(["seed"], "1", monkeypatch)
        assert isinstance(invocation.process, InProcessDbt)
        in_process = outcome(invocation)
        with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
            (sessions,) = con.execute("select count(*) from calendars.nyse_sessions").fetchone()
    finally:
        gc.enable()
    assert in_process == child
    events, code, statuses, failed = in_process
    assert events == [("LogSeedResult", "seed.mkt_platform.nyse_sessions", "success")]
    hook = ("operation.mkt_platform.mkt_platform-on-run-start-0", "success")  # contracts.sql
    assert code == 0 and statuses == [hook, ("seed.mkt_platform.nyse_sessions", "success")]
    assert not failed
    # dbt's own log is in the invocation's target folder, as the child wrote it.
    log = (invocation.target_path / "dbt.log").read_text()
    assert "seed.mkt_platform.nyse_sessions" in log
    # The environment dagster-dbt prepared (target folder, log format...) and dbt's move to
    # the project folder were for the command only; dbt's DuckDB handle is closed, so this
    # process opened the warehouse read-only at once (above).
    assert dict(os.environ) == environ and os.getcwd() == cwd
    assert sessions > 2000

    # A failing command fails alike, with dbt's error in Dagster's.
    child = invoke(["run-operation", "no_such_macro"], "0", monkeypatch)
    in_process = invoke(["run-operation", "no_such_macro"], "1", monkeypatch)
    assert outcome(in_process)[1:] == outcome(child)[1:]
    assert not in_process.is_successful()
    assert "no_such_macro" in str(in_process.get_error())


@pytest.mark.slow
def test_an_in_process_dbt_command_stops_on_sigint_as_a_child_does(data_dir, monkeypatch):
    """dagster-dbt forwards SIGINT to dbt when its run is terminated (from the UI, or SIGTERM
    to the run's process): in process, dbt stops as on Ctrl-C, the remaining nodes not run,
    and the next command of the process works."""
    invocation = invoke(["build", "--exclude-resource-type", "unit_test"], "1", monkeypatch)
    started = 0
    for event in invocation.stream_raw_events():
        if event.raw_event["info"]["name"] == "LogStartLine":
            started += 1
            if started == 3:
                invocation.process.send_signal(signal.SIGINT)
    code = invocation.process.wait(60)
    assert code != 0 and invocation.get_error() is not None
    manifest = json.loads((invocation.target_path / "manifest.json").read_text())
    nodes = [
        n for n in manifest["nodes"].values()
        if n["resource_type"] in ("model", "seed", "test")
        and n["config"].get("materialized") != "ephemeral"
    ]  # fmt: skip
    assert 3 <= started < len(nodes) / 2, (started, len(nodes))
    again = invoke(["seed"], "1", monkeypatch)
    assert again.wait().is_successful()
    assert Path(again.target_path, "run_results.json").exists()
