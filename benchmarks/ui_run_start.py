"""Benchmark: how long a run launched from the UI under `mkt-platform dev` waits for its first
step.

Starts `mkt-platform dev --replay DIR` (the UI, the daemon and the code server of `dg dev`, on
the embedded SQLite instance of a temporary DAGSTER_HOME), waits until the code location has
loaded, then launches a run of one Binance partition (binance_klines_1h, 2023-06-01) through
the webserver's GraphQL API, as the UI's "Materialize" button does, three times one after
the other. For each run it prints the seconds from the run's creation to its first step's
start (STEP_START) and to its end, read from the instance's event log.
Not a test: it prints figures, it asserts nothing.

    python benchmarks/ui_run_start.py --replay ../shared/data
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

RUNS = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replay", type=Path, required=True, help="recorded data dir")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import dagster as dg
    from dagster._core.storage.dagster_run import FINISHED_STATUSES
    from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

    from mkt_platform.testing.environment import fresh_platform_environment

    with tempfile.TemporaryDirectory() as tmp:
        env = fresh_platform_environment(Path(tmp))
        home = Path(env["DAGSTER_HOME"])
        port = free_port()
        dev = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "mkt-platform"),
                "dev",
                "--port",
                str(port),
                "--replay",
                str(args.replay),
                "--replay-port",
                str(free_port()),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            client = DagsterGraphQLClient("127.0.0.1", port_number=port)
            started = time.monotonic()
            rows = []
            os.environ["DAGSTER_HOME"] = str(home)
            with dg.DagsterInstance.get() as instance:
                for attempt in range(RUNS):
                    while True:
                        try:
                            run_id = client.submit_job_execution(
                                "__ASSET_JOB",
                                asset_selection=["binance_klines_1h"],
                                tags={"dagster/partition": "2023-06-01"},
                            )
                            break
                        except (DagsterGraphQLClientError, Exception):
                            if time.monotonic() - started > 300:
                                raise
                            time.sleep(1)
                    if attempt == 0:
                        print(f"UI and code location up after {time.monotonic() - started:.1f} s")
                    while True:
                        run = instance.get_run_record_by_id(run_id)
                        if run is not None and run.dagster_run.status in FINISHED_STATUSES:
                            break
                        time.sleep(0.5)
                    created = run.create_timestamp.timestamp()
                    step = next(
                        (
                            e.timestamp
                            for e in instance.all_logs(run_id)
                            if e.dagster_event is not None
                            and e.dagster_event.event_type_value == "STEP_START"
                        ),
                        None,
                    )
                    ended = run.end_time or time.time()
                    rows.append((step - created if step else float("nan"), ended - created))
                    print(
                        f"run {attempt + 1} ({run.dagster_run.status.value}): first step "
                        f"{rows[-1][0]:.1f} s after it was created, ended after {rows[-1][1]:.1f} s"
                    )
            print(
                f"median over {RUNS} runs: first step after "
                f"{statistics.median(r[0] for r in rows):.1f} s, ended after "
                f"{statistics.median(r[1] for r in rows):.1f} s"
            )
        finally:
            os.killpg(dev.pid, signal.SIGINT)
            try:
                dev.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(dev.pid, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
