"""``mkt-platform``: the command line of the platform.

``mkt-platform materialize --start DATE --end DATE [--replay DIR]`` materializes every venue's
raw pulls for those days, the session marts for the sessions starting on them and the options
and funding marts of those UTC days, through Dagster, on the configured instance
(``DAGSTER_HOME``; when unset, ``$MKT_DATA_DIR/dagster_home``). With ``--replay`` the clients
talk to a local replay of the recordings in DIR, and the instrument universe is the one the
recordings cover (``mkt_platform/replay/recorded_instruments.yaml``) unless
``MKT_INSTRUMENTS_FILE`` says otherwise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import warnings
from contextlib import ExitStack, redirect_stdout, suppress
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

#: The embedded default instance configuration (SQLite), at the repository root.
EMBEDDED_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"
#: The instruments the recordings cover (the replay has no data for the others).
RECORDED_INSTRUMENTS = Path(__file__).resolve().parent / "replay" / "recorded_instruments.yaml"
#: Base-URL settings pointed at the replay server, and the exchange each one emulates.
REPLAY_URLS = {
    "BINANCE_BASE_URL": "binance",
    "HYPERLIQUID_BASE_URL": "hyperliquid",
    "DERIBIT_BASE_URL": "deribit",
    "DERIBIT_HISTORY_BASE_URL": "deribit_history",
}


def _dagster_home() -> Path:
    """``DAGSTER_HOME``, or ``$MKT_DATA_DIR/dagster_home`` with the embedded default config."""
    from mkt_platform import settings

    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"])
    home = settings.data_dir() / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() and EMBEDDED_DAGSTER_YAML.exists():
        shutil.copyfile(EMBEDDED_DAGSTER_YAML, config)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def open_instance() -> Any:
    """The Dagster instance of ``DAGSTER_HOME``, its storage created under a file lock.

    Two CLIs started at once on a fresh instance would otherwise both create the SQLite
    schema and one would crash (``table secondary_indexes already exists``, or alembic's
    "more than one head"). The lock (``$DAGSTER_HOME/.mkt-instance.lock``) is held only
    while the storages are opened, not during runs.
    """
    import fcntl

    import dagster as dg

    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".mkt-instance.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        instance = dg.DagsterInstance.get()
        # Touch each storage, so that whatever it creates on first use is created now.
        instance.get_runs_count()
        instance.event_log_storage.get_concurrency_keys()
        instance.all_instigator_state()
    return instance


def _table(con, title: str, sql: str) -> list[str]:
    """``sql`` rendered as a fixed-width text table under ``title`` (empty if no rows)."""
    try:
        cursor = con.execute(sql)
    except Exception:  # the mart does not exist yet (nothing was built)
        return []
    names = [c[0] for c in cursor.description]
    rows = [["" if v is None else str(v) for v in row] for row in cursor.fetchall()]
    if not rows:
        return []
    widths = [max(len(n), *(len(r[i]) for r in rows)) for i, n in enumerate(names)]
    numeric = [all(_is_number(r[i]) for r in rows) for i in range(len(names))]

    def line(values: list[str]) -> str:
        cells = zip(values, widths, numeric, strict=True)
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in cells).rstrip()

    return ["", title, line(names), line(["-" * w for w in widths]), *map(line, rows)]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text == ""
    return True


def _summary(warehouse: Path) -> list[str]:
    """The session table and the options table the main command ends with."""
    import duckdb

    if not warehouse.exists():
        return []
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return (
            _table(
                con,
                "Daily sessions (marts.session_ohlc_daily): per instrument, the latest session",
                """
            select source, instrument, count(*) over w as sessions,
                   strftime(session_start, '%Y-%m-%d %H:%M') as latest_session,
                   open, high, low, close, chclose as "chclose %", candle_count as candles
            from marts.session_ohlc_daily
            window w as (partition by source, instrument)
            qualify row_number() over (
                partition by source, instrument order by session_start desc) = 1
            order by source, instrument
            """,
            )
            + _table(
                con,
                "Weekly and monthly sessions (marts.session_ohlc_weekly, _monthly): the latest",
                """
            with sessions as (
                select 'weekly' as session, source, instrument, session_start, open, high,
                       low, close, chclose, day_count
                from marts.session_ohlc_weekly
                union all
                select 'monthly', source, instrument, session_start, open, high, low, close,
                       chclose, day_count
                from marts.session_ohlc_monthly
            )
            select session, source, instrument, count(*) over w as sessions,
                   strftime(session_start, '%Y-%m-%d %H:%M') as latest_start,
                   open, high, low, close, chclose as "chclose %", day_count as days
            from sessions
            window w as (partition by session, source, instrument)
            qualify row_number() over (
                partition by session, source, instrument order by session_start desc) = 1
            order by session desc, source, instrument
            """,
            )
            + _table(
                con,
                "Options (marts.option_ohlc_hourly): "
                "the 8 most traded instruments of the busiest hour",
                """
            with busiest as (
                select hour from marts.option_ohlc_hourly
                group by hour order by sum(trades) desc, hour limit 1
            )
            select strftime(o.hour, '%Y-%m-%d %H:%M') as hour, instrument,
                   open, high, low, close, round(vwap, 6) as vwap, iv_close, volume,
                   trades, round(distance, 2) as "distance %"
            from marts.option_ohlc_hourly o join busiest using (hour)
            order by trades desc, volume desc, instrument limit 8
            """,
            )
        )


class _RunLog:
    """A log file that never fails the run writing to it: a write that the disk refuses (full,
    read-only) is dropped, and the run's own outcome says what went wrong."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file: Any = open(path, "a")  # noqa: SIM115
        except OSError:
            self._file = None

    def write(self, text: str) -> int:
        if self._file is not None:
            with suppress(OSError):
                self._file.write(text)
        return len(text)

    def flush(self) -> None:
        if self._file is not None:
            with suppress(OSError):
                self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            with suppress(OSError):
                self._file.close()


def materialize(args: argparse.Namespace) -> int:
    from mkt_platform import settings

    with ExitStack() as stack:
        if args.replay:
            from mkt_platform.replay import ReplayServer

            server = stack.enter_context(ReplayServer(args.replay, port=args.replay_port))
            for variable, exchange in REPLAY_URLS.items():
                os.environ[variable] = server.base_url(exchange)
            os.environ.setdefault("MKT_INSTRUMENTS_FILE", str(RECORDED_INSTRUMENTS))
            print(f"replay server on {server.url}, serving recorded data from {args.replay}")
            print(f"instrument universe: {os.environ['MKT_INSTRUMENTS_FILE']}")
        home = _dagster_home()

        from mkt_platform.definitions import build_definitions
        from mkt_platform.lib.instruments import InstrumentsFileError, load_instruments
        from mkt_platform.lib.materialize import RangeError, plan, run_plan

        try:
            universe = load_instruments()
        except InstrumentsFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if not universe:
            print(f"warning: {os.environ.get('MKT_INSTRUMENTS_FILE')} lists no instrument")
        defs = build_definitions()
        try:
            steps = plan(defs, args.start, args.end)
        except RangeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(
            f"Binance: {settings.binance_base_url()}; Hyperliquid: "
            f"{settings.hyperliquid_base_url()}; Deribit: {settings.deribit_history_base_url()} "
            f"(history), {settings.deribit_base_url()} (live)"
        )
        print(
            f"session anchor {settings.session_anchor_hour():02d}:00 UTC; Dagster instance {home}"
        )
        from mkt_platform.lib import lake, runs

        swept = lake.sweep_stale_temp_files(settings.lake_dir())
        if swept:
            print(f"swept {len(swept)} temporary file(s) left in the lake by writes that died")

        with open_instance() as instance:
            for orphan in runs.reap_orphaned_runs(instance, untagged=False):
                print(
                    f"run {orphan.run_id} ({orphan.job_name}) was left {orphan.status} by a "
                    f"process that is gone (pid {orphan.pid}): marked failed"
                    + (", its warehouse pool slot freed" if orphan.freed_slots else "")
                )
            # dbt's own output (a line per model and per test, about a thousand a run) goes
            # to a log file; the terminal keeps the plan's progress and the summary.
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            run_log = _RunLog(settings.data_dir() / "logs" / f"materialize-{stamp}.log")
            terminal = sys.stdout

            def say(line: str) -> None:
                print(line, file=terminal, flush=True)

            try:
                with redirect_stdout(run_log):
                    results = run_plan(
                        defs,
                        steps,
                        instance,
                        progress=say,
                        pool_wait_seconds=settings.pool_wait_seconds(),
                    )
            except runs.PoolWaitTimeout as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            finally:
                run_log.close()
    failed = {name: why for r in results for name, why in r.failed.items()}
    skipped = sorted({name for r in results for name in r.skipped})
    print()
    print(f"dbt log:   {run_log.path}")
    print(f"lake:      {settings.lake_dir()}")
    print(f"warehouse: {settings.warehouse_path()} (schemas staging, intermediate, marts)")
    try:
        summary = _summary(settings.warehouse_path())
    except Exception as exc:  # the warehouse is held by another process, or unreadable
        summary = [f"(no summary: the warehouse cannot be read now: {exc})"]
    for line in summary:
        print(line)
    dagster = Path(sys.executable).parent / "dagster"
    print(f"Dagster UI: DAGSTER_HOME={home} {dagster} dev   (then open http://127.0.0.1:3000)")
    if failed or skipped or len(results) < len(steps):
        print(file=sys.stderr)
        for name, why in failed.items():
            print(f"FAILED: {name}: {why}", file=sys.stderr)
        if skipped:
            print(f"SKIPPED (an upstream asset failed): {', '.join(skipped)}", file=sys.stderr)
        print("The run logs are in the Dagster UI (command above).", file=sys.stderr)
        return 1
    return 0


def _disk_problem(exc: BaseException) -> str | None:
    """ "disk full ..." or "read-only ..." when the data dir's or the instance's disk is the
    cause of ``exc`` (see :func:`mkt_platform.lib.lake.disk_problem`), else ``None``."""
    from mkt_platform import settings
    from mkt_platform.lib.lake import disk_problem

    folders = [settings.data_dir()]
    if os.environ.get("DAGSTER_HOME"):
        folders.append(Path(os.environ["DAGSTER_HOME"]))
    for folder in folders:
        problem = disk_problem(folder, exc if isinstance(exc, OSError) else None)
        if problem is not None:
            return problem
    return None


def main(argv: list[str] | None = None) -> int:
    # backfill_policy and pools are marked beta; the warning says nothing a user can act on.
    warnings.filterwarnings("ignore", message=".*(beta|preview).*", category=Warning)
    parser = argparse.ArgumentParser(prog="mkt-platform", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "materialize",
        help="materialize every venue's raw pulls and the marts for a range of days",
        description="Materialize every venue's raw assets for START..END (inclusive), the "
        "sessions starting on those days and the options and funding marts of those UTC "
        "days, through Dagster on the configured instance.",
    )
    run.add_argument("--start", type=date.fromisoformat, required=True, help="first day")
    run.add_argument("--end", type=date.fromisoformat, required=True, help="last day")
    run.add_argument(
        "--replay",
        type=Path,
        metavar="DIR",
        help="serve the recorded exchange data in DIR (e.g. ../shared/data) and pull from it",
    )
    run.add_argument("--replay-port", type=int, default=0, help="port of the replay server")
    args = parser.parse_args(argv)
    if args.end < args.start:
        parser.error("--end is before --start")
    # SIGTERM stops the CLI as Ctrl-C does: the running step is interrupted (its dbt process
    # gets SIGINT), the run is marked failed, and nothing waits on.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return materialize(args)
    except Exception as exc:
        # A full or read-only disk surfaces as SQLite's "disk I/O error", DuckDB's or
        # pyarrow's own words: say it plainly when that is the cause.
        problem = _disk_problem(exc)
        if problem is None:
            raise
        print(f"error: {problem} ({type(exc).__name__}: {str(exc)[:300]})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: stopped (the interrupted run is marked failed)", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
