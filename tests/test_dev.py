"""``mkt-platform dev --replay DIR``: the Dagster UI against the replay, as a new user starts it.

One real start (``dg dev``: webserver, daemon and code server) from the repository root with
no setting but the data dir: the UI serves, the pull schedules are stopped (replay mode), a
run launched through the UI's API pulls the recorded Binance klines of 2023-03-24
(``shared/data/binance``, SOURCES.md section 1) into the lake, and Ctrl-C stops everything.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import UTC, datetime

import httpx
import pyarrow.parquet as pq
import pytest

from mkt_platform.replay.server import PLATFORM_BASE_URLS
from tests.conftest import REPO, SHARED_DATA, SYMBOLS, recorded_klines
from tests.test_deployment import BIN, free_port, graphql, launch_run, wait_for

SCHEDULES = """
{ repositoriesOrError { ... on RepositoryConnection { nodes {
    schedules { name scheduleState { status } } } } } }
"""
RUN_STATUS = """
query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }
"""


@pytest.mark.slow
def test_dev_serves_the_ui_against_the_replay(tmp_path):
    port = free_port()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("MKT_", "DAGSTER_")) and name not in PLATFORM_BASE_URLS
    }
    env["MKT_DATA_DIR"] = str(tmp_path / "data")
    log = (tmp_path / "dev.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "mkt-platform"), "dev", "--replay", str(SHARED_DATA), "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # As a script's background job starts it: SIGINT ignored. Ctrl-C must still stop it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        wait_for(
            "the UI's code location",
            lambda: graphql(port, SCHEDULES)["repositoriesOrError"]["nodes"][0]["schedules"],
            240,
            proc,
            interval=2,
        )
        (repository,) = graphql(port, SCHEDULES)["repositoriesOrError"]["nodes"]
        statuses = {s["name"]: s["scheduleState"]["status"] for s in repository["schedules"]}
        # The pull schedules stopped; the warehouse's upkeep, which pulls nothing, runs.
        assert statuses.pop("warehouse_maintenance_schedule") == "RUNNING"
        assert statuses and set(statuses.values()) == {"STOPPED"}, statuses

        run_id = launch_run(port, "binance_klines_1h", "2023-03-24")
        wait_for(
            "the run",
            lambda: (
                graphql(port, RUN_STATUS, {"id": run_id})["runOrError"]["status"]
                in ("SUCCESS", "FAILURE", "CANCELED")
            ),
            240,
            proc,
            interval=2,
        )
        assert graphql(port, RUN_STATUS, {"id": run_id})["runOrError"]["status"] == "SUCCESS"
        lake = tmp_path / "data" / "lake" / "raw" / "binance" / "klines_1h"
        day = pq.read_table(lake / "date=2023-03-24" / "part.parquet")
        start = int(datetime(2023, 3, 24, tzinfo=UTC).timestamp() * 1000)
        recorded = {
            (symbol, row[0])
            for symbol in SYMBOLS
            for row in recorded_klines(symbol, "1h")
            if start <= row[0] < start + 86_400_000
        }
        pulled = {
            (s, int(t.timestamp() * 1000))
            for s, t in zip(day["symbol"].to_pylist(), day["open_time"].to_pylist(), strict=True)
        }
        assert pulled == recorded  # every recorded kline of the day, nothing else
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        finally:
            # dg dev stops its webserver, daemon and code server (and a run worker) after
            # Ctrl-C; on a loaded machine that takes a few seconds.
            deadline = time.monotonic() + 60
            while _group_alive(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.5)
            leftovers = _group_alive(proc.pid)
            if leftovers:
                os.killpg(proc.pid, signal.SIGKILL)
            log.close()
    assert code == 130, (tmp_path / "dev.log").read_text()[-3000:]
    assert not leftovers, "dg dev left processes behind"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/server_info", timeout=2)
    text = (tmp_path / "dev.log").read_text()
    assert "the pull schedules start stopped" in text
    assert "dagster.yaml" not in text or "ignored" not in text


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
