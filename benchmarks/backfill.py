"""Benchmark: backfill 2023-01-01..2023-06-30 (181 days, every venue) through Dagster.

The universe is the recorded one (Binance 1h and 1m, Hyperliquid kPEPE and BTC funding,
Deribit BTC options). Each step (the raw pulls, the session dbt run, the options and funding
dbt run) runs in its own fresh process as one single-run backfill,
from the replay server on the recorded data, into an empty data dir; the script prints wall
time and peak memory (resident set of the process and its children, dbt included) per step.
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
    step = plan(defs, start, end)[index]
    with dg.DagsterInstance.get() as instance:
        started = time.perf_counter()
        (result,) = run_plan(defs, [step], instance, progress=lambda _: None)
        seconds = time.perf_counter() - started
    peak_kib = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    return {
        "step": step.label,
        "partitions": len(step.partition_keys),
        "success": result.success,
        "seconds": round(seconds, 2),
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
        print(f"{'step':<24}{'partitions':>11}{'wall s':>9}{'peak MiB':>10}  ok")
        failed = False
        for index in (0, 1, 2):
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
            failed |= not figures["success"]
            if failed:
                print(f"{figures['step']} failed; stopping")
                break
            print(
                f"{figures['step']:<24}{figures['partitions']:>11}{figures['seconds']:>9}"
                f"{figures['peak_rss_mib']:>10}  {figures['success']}"
            )
        served = {name: server.request_count(name) for name in server.exchanges}
        print(f"requests served by the replay server: {served}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
