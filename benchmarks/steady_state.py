"""Benchmark: the steady state. What one refresh costs, flat as the lake grows, and what the
default schedules, sensors and automation spend per hour.

On a lake of the recorded universe (Binance 1h and 1m, Hyperliquid kPEPE candles and BTC
funding, Deribit, from the replay server, into an empty data dir and the embedded instance):

1. a 1-month lake (2023-06-01..06-30, `mkt-platform materialize` in one process), then:
   - the runs of the default schedules and the automation, each in a fresh process as a run
     worker makes it: the 5-minute refresh (binance_klines_1m of the last day, 2023-06-30,
     and the spot snapshots of today from the replay's synthetic answers: order books, 24h
     tickers, recent trades), the order_book_depth rebuild over today that automation
     requests after each, the hourly refresh (every dataset of
     ``hourly_sources_refresh_schedule`` that day, and the Hyperliquid asset-contexts snapshot
     of today), and the rebuild of the two daily sessions over that day, which the hourly
     refresh triggers;
   - a one-session refresh of the session marts alone (session 2023-06-15) and a one-day
     build of the UTC-daily marts (options and funding, 2023-06-15) through Dagster, each a
     fresh process;
   - a one-day build of the options marts alone (the UTC-daily marts downstream of
     ``deribit_option_trades``, what automation requests when a Deribit day is re-pulled)
     over 2024-04-01, the one recorded day with option trades in the lake (00:00-02:00 UTC;
     the 2023 recordings hold none, so the 2023 options marts are empty), materialized into
     the lake after its first month;
2. the lake grown to 6 months (2023-01-01..05-31 added), the same runs measured again;
3. one tick of each sensor of the code location and of the automation, evaluated in a
   process on the 6-month instance at 2023-07-01 00:30 UTC (its CPU seconds per tick);
4. the CPU seconds per hour of the default schedules and sensors: COMPUTED from the measured
   costs above and the cron and sensor intervals (not measured over an hour), as printed.

Wall and CPU seconds are of the whole process (start, code-location load, the run, dbt; forked,
the imports and the definitions are the forkserver's, printed apart); each
run is measured ``--repeat`` times (3) and the medians printed (one run varies by about half
a second from the next).
Not a test: it prints figures, it asserts nothing.

    python benchmarks/steady_state.py --replay ../shared/data
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The "now" of the measured ticks: just after the last day of the lake closed.
NOW = datetime(2023, 7, 1, 0, 30, tzinfo=UTC)
LAST_DAY = date(2023, 6, 30)
MID_DAY = date(2023, 6, 15)
#: The day of the recordings with Deribit option trades that the lake also holds.
OPTIONS_DAY = date(2024, 4, 1)
#: The day of the snapshot runs (a snapshot is always of today's UTC partition).
TODAY = datetime.now(UTC).date()


def ticks_per_hour(cron: str) -> int:
    """How many times ``cron`` (UTC) fires in an hour (the hour after :data:`NOW`'s)."""
    from dagster._utils.schedules import cron_string_iterator

    start = NOW.replace(minute=0).timestamp() - 1  # so that a tick on the hour counts
    ticks = cron_string_iterator(start, cron, "UTC")
    return sum(1 for _ in itertools.takewhile(lambda t: t.timestamp() < start + 3600, ticks))


def cpu_of_children() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def measure(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``args`` as a fresh process; its wall and CPU seconds and its last stdout line."""
    before, started = cpu_of_children(), time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - started, cpu_of_children() - before
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])}... failed:\n{done.stderr[-3000:]}")
    lines = done.stdout.strip().splitlines()
    return wall, cpu, lines[-1] if lines else ""


def _forked_run(kind: str, day: date, report) -> None:
    """In a process forked by the code server's forkserver: :func:`run_one`, then this
    process's wall time and CPU seconds (its own and its children's) and the run's outcome
    put on ``report``. Its output is dropped, as :func:`measure` captures a fresh process's."""
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
        os.dup2(devnull.fileno(), 2)
    started = time.perf_counter()
    outcome = run_one(kind, day)
    own, children = resource.getrusage(resource.RUSAGE_SELF), cpu_of_children()
    report.put((time.perf_counter() - started, own.ru_utime + own.ru_stime + children, outcome))


class ForkedRuns:
    """Runs forked as ``mkt-platform code-server`` forks them: from a forkserver that imported
    :data:`mkt_platform.code_server.PRELOAD` and built the definitions (started here once, from
    ``env``)."""

    def __init__(self, env: dict[str, str]) -> None:
        from multiprocessing import forkserver

        from mkt_platform.code_server import run_worker_context

        os.environ.clear()
        os.environ.update(env)  # the forkserver and its runs take this process's environment
        self.context = run_worker_context()
        forkserver.ensure_running()
        self.pid = forkserver._forkserver._forkserver_pid  # only to read its CPU seconds

    def server_cpu(self) -> float:
        """The forkserver's own CPU seconds so far: its imports and definitions (once per code
        server) and its forks."""
        stat = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")

    def measure(self, kind: str, day: date) -> tuple[float, float, str]:
        """One run forked: its wall and CPU seconds, and its outcome (JSON, as :func:`measure`
        gives a fresh process's last line)."""
        report = self.context.Queue()
        process = self.context.Process(target=_forked_run, args=(kind, day, report))
        process.start()
        process.join()
        if process.exitcode != 0:
            raise RuntimeError(f"{kind} ({day}) exited with {process.exitcode}")
        wall, cpu, outcome = report.get(timeout=10)
        return wall, cpu, json.dumps(outcome)


def run_one(kind: str, day: date) -> dict:
    """In this process: one run as a run worker makes it (see the module docstring); whether
    it succeeded and its partition keys."""
    warnings.filterwarnings("ignore")
    import dagster as dg

    from mkt_platform.definitions import defs as code_location
    from mkt_platform.lib.materialize import RangeStep, plan, run_plan

    # As the run worker loads them: built here in a fresh interpreter, the forkserver's when
    # forked (mkt_platform/run_worker_modules.py: prebuild).
    defs = code_location()
    if kind in ("5-minute refresh", "hourly refresh"):
        from mkt_platform.defs.binance.datasets import FIVE_MINUTE_REFRESH
        from mkt_platform.defs.registry import raw_datasets
        from mkt_platform.lib.datasets import HOURLY_REFRESH

        refresh = FIVE_MINUTE_REFRESH if kind == "5-minute refresh" else HOURLY_REFRESH
        members = [d for d in raw_datasets() if d.refresh == refresh]
        pulls = [d.key for d in members if not d.snapshot]
        snapshots = [d.key for d in members if d.snapshot]
        # A tick's run pulls today and takes the snapshots of now. The replay's today is the
        # recorded ``day`` for the pulls (real volumes) and the real today for the snapshots
        # (its synthetic answers): two runs in this one process, one run's overhead more
        # than the tick's single run.
        steps = [RangeStep("pull", dg.AssetSelection.assets(*pulls), (day.isoformat(),))]
        if snapshots:
            selection = dg.AssetSelection.assets(*snapshots)
            steps.append(RangeStep("snapshot", selection, (TODAY.isoformat(),)))
    elif kind == "refresh sessions":
        steps = [s for s in plan(defs, day - timedelta(days=1), day) if s.label == "dbt sessions"]
    elif kind == "one session":
        steps = [s for s in plan(defs, day, day) if s.label == "dbt sessions"]
    elif kind == "one day of options and funding":
        steps = [s for s in plan(defs, day, day) if s.label == "dbt options and funding"]
    elif kind == "one day of the options marts":
        (utc,) = [s for s in plan(defs, day, day) if s.label == "dbt options and funding"]
        graph = defs.resolve_asset_graph()
        options = dg.AssetSelection.assets("deribit_option_trades").downstream().resolve(graph)
        selection = dg.AssetSelection.assets(*(utc.selection.resolve(graph) & options))
        steps = [RangeStep("dbt options", selection, utc.partition_keys, utc.pool)]
    elif kind == "order_book_depth of today":
        from mkt_platform.lib.dbt_assets import WAREHOUSE_POOL

        selection = dg.AssetSelection.assets("order_book_depth")
        steps = [RangeStep("dbt order book", selection, (day.isoformat(),), WAREHOUSE_POOL)]
    else:
        raise ValueError(kind)
    with dg.DagsterInstance.get() as instance:
        results = run_plan(defs, steps, instance, progress=lambda _: None)
    return {"ok": all(r.success for r in results), "keys": steps[0].partition_keys}


def tick_costs() -> None:
    """In this process: the CPU seconds of one tick of each sensor and of each automation
    sensor, evaluated at :data:`NOW` on the instance: a sensor's second of two ticks (the
    steady case); an automation sensor's mean over its ticks 2 to 7 over its own assets (its
    cursor fills over the first ticks, and Python's collector runs every few ticks)."""
    warnings.filterwarnings("ignore")
    import dagster as dg

    from mkt_platform import settings
    from mkt_platform.definitions import build_definitions

    settings.utcnow = lambda: NOW  # every "now" of the platform comes from here
    defs = build_definitions()
    costs: dict[str, float] = {}
    with dg.DagsterInstance.get() as instance:
        for sensor in defs.sensors:
            if isinstance(sensor, dg.AutomationConditionSensorDefinition):
                cursor, spent = None, []
                for _ in range(7):
                    started = time.process_time()
                    result = dg.evaluate_automation_conditions(
                        defs=defs,
                        instance=instance,
                        asset_selection=sensor.asset_selection,
                        cursor=cursor,
                        evaluation_time=NOW,
                    )
                    cursor = result.cursor
                    spent.append(time.process_time() - started)
                costs[sensor.name] = sum(spent[1:]) / len(spent[1:])
                continue
            cursor = None
            for _ in range(2):
                context = dg.build_sensor_context(
                    instance=instance,
                    cursor=cursor,
                    definitions=defs,
                    resources=defs.resources,
                )
                started = time.process_time()
                sensor(context)
                costs[sensor.name] = time.process_time() - started
                cursor = context.cursor
        intervals = {s.name: s.minimum_interval_seconds or 30 for s in defs.sensors}
    print(json.dumps({"costs": costs, "intervals": intervals}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replay", type=Path, required=True, help="recorded data dir")
    parser.add_argument(
        "--spawn",
        action="store_true",
        help="run each run in a fresh interpreter, as `dagster api grpc` starts runs, instead "
        "of forked from a forkserver as `mkt-platform code-server` does",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kind (medians)")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--day", type=date.fromisoformat, help=argparse.SUPPRESS)
    parser.add_argument("--ticks", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_one(args.run, args.day)))
        return 0
    if args.ticks:
        tick_costs()
        return 0

    from mkt_platform.replay import ReplayServer
    from mkt_platform.replay.server import RECORDED_INSTRUMENTS
    from mkt_platform.testing.environment import fresh_platform_environment

    here = [sys.executable, __file__, "--replay", str(args.replay)]
    cli = [str(Path(sys.executable).parent / "mkt-platform"), "materialize"]
    with tempfile.TemporaryDirectory() as tmp, ReplayServer(args.replay) as server:
        env = fresh_platform_environment(
            Path(tmp),
            {
                **server.platform_environment(),
                "MKT_INSTRUMENTS_FILE": str(RECORDED_INSTRUMENTS),
            },
        )
        forked = None if args.spawn else ForkedRuns(env)
        figures: dict[str, dict[str, tuple[float, float]]] = {}
        lakes = (
            ("1-month lake", date(2023, 6, 1), date(2023, 6, 30)),
            ("6-month lake", date(2023, 1, 1), date(2023, 5, 31)),
        )
        for lake, start, end in lakes:
            wall, cpu, _ = measure([*cli, "--start", str(start), "--end", str(end)], env)
            print(f"{lake}: {start}..{end} materialized in {wall:.1f} s wall, {cpu:.1f} CPU-s")
            if not figures:  # the first lake: add the day with option trades
                options_day = str(OPTIONS_DAY)
                measure([*cli, "--start", options_day, "--end", options_day], env)
                print(f"  and {options_day}, the recorded day with option trades")
            figures[lake] = {}
            for kind, day in (
                ("5-minute refresh", LAST_DAY),
                ("order_book_depth of today", TODAY),
                ("hourly refresh", LAST_DAY),
                ("refresh sessions", LAST_DAY),
                ("one session", MID_DAY),
                ("one day of options and funding", MID_DAY),
                ("one day of the options marts", OPTIONS_DAY),
            ):
                walls, cpus = [], []
                for _ in range(args.repeat):
                    if forked:
                        wall, cpu, out = forked.measure(kind, day)
                    else:
                        wall, cpu, out = measure([*here, "--run", kind, "--day", str(day)], env)
                    if not json.loads(out)["ok"]:
                        print(f"  {kind} failed")
                        return 1
                    walls.append(wall)
                    cpus.append(cpu)
                figures[lake][kind] = (statistics.median(walls), statistics.median(cpus))
        print()
        how = (
            "a fresh interpreter (dagster api grpc)"
            if args.spawn
            else "forked from the forkserver (mkt-platform code-server)"
        )
        print(f"median of {args.repeat} runs of each, {how}, wall s / CPU s")
        print(f"{'':<44}{'1-month lake':>16}{'6-month lake':>16}")
        for kind in figures["1-month lake"]:
            cells = "".join(
                f"{figures[lake][kind][0]:>8.1f}{figures[lake][kind][1]:>8.1f}" for lake in figures
            )
            print(f"{kind:<44}{cells}")
        if forked:
            print(
                f"the forkserver itself (its imports and definitions, once per code server, "
                f"and its {2 * args.repeat * len(figures['1-month lake'])} forks): "
                f"{forked.server_cpu():.1f} CPU-s"
            )
        refresh = [
            sum(figures[lake][k][i] for k in ("hourly refresh", "refresh sessions"))
            for lake in figures
            for i in (0, 1)
        ]
        print(
            f"{'steady-state refresh (hourly pull + sessions)':<44}"
            + "".join(f"{value:>8.1f}" for value in refresh)
        )

        _, _, out = measure([*here, "--ticks"], env)
        ticks = json.loads(out)
        print()
        print(f"one tick at {NOW:%Y-%m-%d %H:%M} UTC on the 6-month instance (CPU s, in process)")
        per_hour: dict[str, float] = {}
        for name, cost in sorted(ticks["costs"].items()):
            interval = ticks["intervals"][name]
            per_hour[name] = cost * 3600 / interval
            print(f"  {name:<30} {cost:6.2f} every {interval:>5} s: {per_hour[name]:7.1f} CPU-s/h")
        six = figures["6-month lake"]
        # The 5-minute refresh pulls the 1m klines (which no mart reads) and takes the spot
        # snapshots in one run; automation rebuilds order_book_depth over today at most once
        # per tick of its refresh_cron. The hourly refresh pulls the rest and takes the
        # asset-contexts snapshot, and automation rebuilds the sessions and the UTC-daily
        # marts over the day (perp_premium_snapshots among them). Runs an hour come from the
        # crons. ESTIMATES, not measurements: the :20 gap repair as one more 5-minute
        # refresh; the capture marts of each closed hour (when the capture runs) as one
        # order_book_depth run.
        from mkt_platform.defs.binance.datasets import FIVE_MINUTE_REFRESH
        from mkt_platform.lib.datasets import HOURLY_REFRESH
        from mkt_platform.lib.dbt import REFRESH_CRON

        mart_run = six["order_book_depth of today"][1]
        manifest = json.loads((ROOT / "dbt_project" / "target" / "manifest.json").read_text())
        (depth,) = [n for n in manifest["nodes"].values() if n["name"] == "order_book_depth"]
        five, hourly = ticks_per_hour(FIVE_MINUTE_REFRESH.cron), ticks_per_hour(HOURLY_REFRESH.cron)
        depth_runs = (
            ticks_per_hour(depth["meta"][REFRESH_CRON]) if REFRESH_CRON in depth["meta"] else five
        )
        schedules = {
            f"binance_five_minute_refresh_schedule ({five}/h)": five * six["5-minute refresh"][1],
            f"order_book_depth ({depth_runs}/h)": depth_runs * mart_run,
            f"hourly_sources_refresh_schedule + the marts it triggers ({hourly}/h)": hourly
            * (
                six["hourly refresh"][1]
                + six["refresh sessions"][1]
                + six["one day of options and funding"][1]
            ),
            "gap repair (est., 1/h)": six["5-minute refresh"][1],
            "capture marts (est., 1/h)": mart_run,
        }
        for name, value in schedules.items():
            print(f"  {name:<58} {value:7.1f} CPU-s/h")
        total = sum(per_hour.values()) + sum(schedules.values())
        print(
            f"the default schedules, sensors and automation: {total:.0f} CPU-s per hour "
            "(COMPUTED from the per-run and per-tick costs above and the intervals; a "
            "sensor tick in the daemon also pays a gRPC call to the code server, not counted)"
        )
        print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
