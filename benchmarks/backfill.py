"""Benchmark: backfill 2023-01-01..2023-06-30 (181 days, every venue) through Dagster.

The universe is the recorded one (Binance 1h and 1m, Hyperliquid kPEPE and BTC funding,
Deribit BTC options). Each step of the CLI's plan (the raw pulls, the daily, weekly and
monthly session dbt runs, the options and funding dbt run) runs in its own fresh process as
one single-run backfill, from the replay server on the recorded data, into an empty data dir; the script prints wall
time, CPU seconds and peak memory (resident set of the process and its children, dbt
included) per step, their totals, and the load average.
Not a test: it prints figures, it asserts nothing.

    python benchmarks/backfill.py --replay ../shared/data [--start 2023-01-01 --end 2023-06-30]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path


def run_step(index: int, start: date, end: date) -> dict:
    """Run step ``index`` of the plan in this process; report its time and peak memory."""
    warnings.filterwarnings("ignore")
    import dagster as dg

    from mkt_platform.definitions import build_definitions
    from mkt_platform.lib.materialize import plan, run_plan

    defs = build_definitions()
    steps = plan(defs, start, end)
    if index >= len(steps):
        return {"step": None}
    step = steps[index]

    def cpu() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    with dg.DagsterInstance.get() as instance:
        started, cpu_started = time.perf_counter(), cpu()
        (result,) = run_plan(defs, [step], instance, progress=lambda _: None)
        seconds, cpu_seconds = time.perf_counter() - started, cpu() - cpu_started
    peak_kib = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    return {
        "step": step.label,
        "partitions": len(step.partition_keys),
        "success": result.success,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds, 2),
        "peak_rss_mib": round(peak_kib / 1024, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replay", type=Path, required=True, help="recorded data dir")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2023, 1, 1))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2023, 6, 30))
    parser.add_argument("--step", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step is not None:
        print(json.dumps(run_step(args.step, args.start, args.end)))
        return 0

    from mkt_platform.cli import RECORDED_INSTRUMENTS, REPLAY_URLS
    from mkt_platform.replay import ReplayServer

    with tempfile.TemporaryDirectory() as tmp, ReplayServer(args.replay) as server:
        home = Path(tmp) / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = {
            **os.environ,
            "MKT_DATA_DIR": str(Path(tmp) / "data"),
            "DAGSTER_HOME": str(home),
            **{variable: server.base_url(exchange) for variable, exchange in REPLAY_URLS.items()},
            "MKT_INSTRUMENTS_FILE": str(RECORDED_INSTRUMENTS),
        }
        print(f"backfill {args.start}..{args.end}, sessions at the default anchor, replay data")
        print(f"{'step':<24}{'partitions':>11}{'wall s':>9}{'CPU s':>8}{'peak MiB':>10}  ok")
        failed = False
        totals = [0.0, 0.0]
        for index in range(10):
            out = (
                subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--replay",
                        str(args.replay),
                        "--step",
                        str(index),
                        "--start",
                        args.start.isoformat(),
                        "--end",
                        args.end.isoformat(),
                    ],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            figures = json.loads(out)
            if figures["step"] is None:  # every step of the plan is done
                break
            failed |= not figures["success"]
            if failed:
                print(f"{figures['step']} failed; stopping")
                break
            totals[0] += figures["seconds"]
            totals[1] += figures["cpu_seconds"]
            print(
                f"{figures['step']:<24}{figures['partitions']:>11}{figures['seconds']:>9}"
                f"{figures['cpu_seconds']:>8}{figures['peak_rss_mib']:>10}  {figures['success']}"
            )
        print(f"{'all steps':<35}{totals[0]:>9.2f}{totals[1]:>8.2f}")
        print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
        served = {name: server.request_count(name) for name in server.exchanges}
        print(f"requests served by the replay server: {served}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
