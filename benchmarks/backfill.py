"""Benchmark: backfill 2023-01-01..2023-06-30 (181 days, every venue) through Dagster.

The universe is the recorded one (Binance 1h and 1m, Hyperliquid kPEPE and BTC funding,
Deribit BTC options). The CLI's plan (the raw pulls, the daily, weekly and monthly session
dbt runs, the options and funding dbt run, each one single-run backfill) runs as
``mkt-platform materialize`` runs it: every step in one process, from the replay server on
the recorded data (in this script's process, so its work is not counted), into an empty data
dir. The script prints each step's wall time, CPU seconds and peak memory (resident set of
the process so far, dbt included: dbt runs in it), then the whole process (its start and
code-location load included) and the load average; then the DuckDB floor (the daily sessions
and the hourly option OHLC, each one query over the same lake files) and the platform's time
as a multiple of it.
Not a test: it prints figures, it asserts nothing.

    python benchmarks/backfill.py --replay ../shared/data [--start 2023-01-01 --end 2023-06-30]
        [--warehouse duckdb|ducklake] [--process-per-step]

``--warehouse ducklake`` builds the marts into a DuckLake (SQLite catalog) instead of the
DuckDB file (``MKT_WAREHOUSE``, see mkt_platform/warehouse.py), for the two side by side.
``--process-per-step`` runs each step in a fresh process of its own instead, as a launched
run pays it (the figures of this benchmark before 2026-12-06 were measured so): each step's
figures are then its whole process's.
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


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _peak_mib() -> float:
    peak_kib = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    return round(peak_kib / 1024, 1)


def run_steps(start: date, end: date, index: int | None = None) -> list[dict]:
    """Run the steps of the plan in this process, as ``mkt-platform materialize`` does (one
    definitions, one instance, :func:`run_plan` over the steps), or only step ``index`` (an
    empty list when the plan has no such step); report each step's time, CPU and the peak
    memory of the process by its end."""
    warnings.filterwarnings("ignore")
    import dagster as dg

    from mkt_platform.definitions import build_definitions
    from mkt_platform.lib.materialize import RangeStep, StepResult, plan, run_plan

    figures: list[dict] = []

    class Recorder:
        def step_started(self, number: int, total: int, step: RangeStep) -> None:
            self.started, self.cpu_started = time.perf_counter(), _cpu()

        def step_ended(self, result: StepResult) -> None:
            figures.append(
                {
                    "step": result.step.label,
                    "partitions": len(result.step.partition_keys),
                    "success": result.success,
                    "seconds": round(time.perf_counter() - self.started, 2),
                    "cpu_seconds": round(_cpu() - self.cpu_started, 2),
                    "peak_rss_mib": _peak_mib(),
                }
            )

        def note(self, line: str) -> None:
            pass

    defs = build_definitions()
    steps = plan(defs, start, end)
    if index is not None:
        steps = steps[index : index + 1]
    with dg.DagsterInstance.get() as instance:
        run_plan(defs, steps, instance, progress=Recorder())
    return figures


#: The DuckDB floor of the daily sessions: the same OHLCV per (source, instrument, session)
#: from the same lake files in one query (the lake's own rows, no dedupe: a pull writes
#: each candle once), at the default anchor hour.
SESSIONS_FLOOR = """
with candles as (
    select 'binance' as source, symbol as instrument, open_time, open, high, low, close, volume
    from read_parquet('{lake}/binance/klines_1h/date=*/part.parquet', hive_partitioning = true)
    union all
    select 'hyperliquid', coin, open_time, open, high, low, close, volume
    from read_parquet('{lake}/hyperliquid/candles_1h/date=*/part.parquet', hive_partitioning = true)
)
select
    source, instrument,
    time_bucket(interval 1 day, open_time, timestamptz '2000-01-01 {anchor:02d}:00:00+00')
        as session_start,
    arg_min(open, open_time) as open, max(high) as high, min(low) as low,
    arg_max(close, open_time) as close, sum(volume) as volume
from candles
group by all
"""

#: The DuckDB floor of the hourly option OHLC: per (UTC hour, instrument) from the lake.
OPTIONS_FLOOR = """
select
    time_bucket(interval 1 hour, "timestamp") as hour, instrument_name,
    arg_min(price, ("timestamp", trade_seq)) as open, max(price) as high, min(price) as low,
    arg_max(price, ("timestamp", trade_seq)) as close, sum(amount) as volume
from read_parquet('{lake}/deribit/option_trades/date=*/part.parquet', hive_partitioning = true)
group by all
"""


def duckdb_floor(data_dir: Path, anchor: int, start: date, end: date) -> dict[str, float]:
    """Seconds of one DuckDB query for the daily sessions and for the hourly option OHLC over
    the same lake files; the sessions are compared with the mart (rows that differ)."""
    from mkt_platform import warehouse

    os.environ["MKT_DATA_DIR"] = str(data_dir)
    lake = data_dir / "lake" / "raw"
    figures: dict[str, float] = {}
    with warehouse.connect(read_only=True) as con:
        window = (
            f"session_start >= timestamptz '{start.isoformat()} {anchor:02d}:00:00+00' and "
            f"session_start < timestamptz '{end.isoformat()} {anchor:02d}:00:00+00' "
            "+ interval 1 day"
        )
        sql = SESSIONS_FLOOR.format(lake=lake, anchor=anchor)
        started = time.perf_counter()
        con.execute(f"create temp table floor_sessions as select * from ({sql}) where {window}")
        figures["sessions_s"] = time.perf_counter() - started
        figures["sessions"] = con.execute("select count(*) from floor_sessions").fetchone()[0]
        figures["sessions_differing"] = con.execute(
            "select count(*) from (select source, instrument, session_start, open, high, low, "
            "close, volume from floor_sessions except select source, instrument, session_start, "
            f"open, high, low, close, volume from marts.session_ohlc_daily where {window})"
        ).fetchone()[0]
        if any((lake / "deribit" / "option_trades").glob("date=*/part.parquet")):
            started = time.perf_counter()
            rows = con.execute(f"select count(*) from ({OPTIONS_FLOOR.format(lake=lake)})")
            figures["option_hours"] = rows.fetchone()[0]
            figures["options_s"] = time.perf_counter() - started
    return figures


def _child(
    args: argparse.Namespace, env: dict[str, str], mode: list[str]
) -> tuple[list, float, float]:
    """Run this script in a child process in ``mode`` (``--step N`` or ``--all``); return its
    JSON answer, the child's wall seconds and CPU seconds (its whole process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(
        [
            *(sys.executable, __file__, "--replay", str(args.replay)),
            *("--start", args.start.isoformat(), "--end", args.end.isoformat(), *mode),
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return json.loads(out.strip().splitlines()[-1]), time.perf_counter() - started, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replay", type=Path, required=True, help="recorded data dir")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2023, 1, 1))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2023, 6, 30))
    parser.add_argument("--warehouse", choices=("duckdb", "ducklake"))
    parser.add_argument("--process-per-step", action="store_true")
    parser.add_argument("--step", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--all", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step is not None or args.all:
        print(json.dumps(run_steps(args.start, args.end, args.step)))
        return 0

    # the step processes inherit it (they are not given --warehouse)
    os.environ["MKT_WAREHOUSE"] = args.warehouse or os.environ.get("MKT_WAREHOUSE", "duckdb")
    from mkt_platform.replay import ReplayServer
    from mkt_platform.replay.server import RECORDED_INSTRUMENTS
    from mkt_platform.testing.environment import fresh_platform_environment

    with tempfile.TemporaryDirectory() as tmp, ReplayServer(args.replay) as server:
        env = fresh_platform_environment(
            Path(tmp),
            {
                **server.platform_environment(),
                "MKT_INSTRUMENTS_FILE": str(RECORDED_INSTRUMENTS),
            },
        )
        print(
            f"backfill {args.start}..{args.end}, sessions at the default anchor, replay data, "
            f"warehouse {os.environ['MKT_WAREHOUSE']}"
        )
        if args.process_per_step:
            print("each step in a fresh process: wall and CPU seconds of the whole process")
        else:
            print(
                "every step in one process, as `mkt-platform materialize` runs them: each "
                "step's wall and CPU seconds, the process's peak memory by its end"
            )
        print(f"{'step':<24}{'partitions':>11}{'wall s':>9}{'CPU s':>8}{'peak MiB':>10}  ok")
        steps: list[dict] = []
        if args.process_per_step:
            for index in range(10):
                ran, seconds, cpu = _child(args, env, ["--step", str(index)])
                if not ran:  # every step of the plan is done
                    break
                (figures,) = ran
                # The whole process (start, code-location load, the run, dbt), as a scheduled
                # or launched run pays it.
                figures["seconds"], figures["cpu_seconds"] = round(seconds, 2), round(cpu, 2)
                steps.append(figures)
                if not figures["success"]:
                    break
            process = (sum(f["seconds"] for f in steps), sum(f["cpu_seconds"] for f in steps))
        else:
            steps, *process = _child(args, env, ["--all"])
        failed = False
        totals = [0.0, 0.0]
        step_seconds: dict[str, float] = {}
        for figures in steps:
            failed |= not figures["success"]
            step_seconds[figures["step"]] = figures["seconds"]
            totals[0] += figures["seconds"]
            totals[1] += figures["cpu_seconds"]
            print(
                f"{figures['step']:<24}{figures['partitions']:>11}{figures['seconds']:>9}"
                f"{figures['cpu_seconds']:>8}{figures['peak_rss_mib']:>10}  {figures['success']}"
            )
        print(f"{'all steps':<35}{totals[0]:>9.2f}{totals[1]:>8.2f}")
        if not args.process_per_step:
            print(
                f"{'the whole process':<35}{process[0]:>9.2f}{process[1]:>8.2f}"
                "  (its start, imports and definitions included)"
            )
        if not failed:
            from mkt_platform import settings

            floor = duckdb_floor(
                Path(tmp) / "data", settings.session_anchor_hour(), args.start, args.end
            )
            print(
                f"DuckDB floor: {floor['sessions']} daily sessions in one query, "
                f"{floor['sessions_s']:.2f}s ({floor['sessions_differing']} differ from the "
                f"mart); the platform's sessions step is {step_seconds['dbt sessions']:.2f}s, "
                f"{step_seconds['dbt sessions'] / floor['sessions_s']:.0f}x it"
            )
            if floor.get("option_hours"):
                print(
                    f"DuckDB floor: {floor['option_hours']} option instrument-hours in one "
                    f"query, {floor['options_s']:.2f}s; the options and funding step is "
                    f"{step_seconds['dbt options and funding']:.2f}s, "
                    f"{step_seconds['dbt options and funding'] / floor['options_s']:.0f}x it"
                )
            work = floor["sessions_s"] + floor.get("options_s", 0.0)
            print(f"the whole backfill is {totals[0] / work:.0f}x the two floor queries")
        print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
        served = {name: server.request_count(name) for name in server.exchanges}
        print(f"requests served by the replay server: {served}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
