"""``mkt-platform``: the command line of the platform.

``mkt-platform materialize --start DATE --end DATE [--replay DIR]`` materializes every venue's
raw pulls for those days, the session marts for the sessions starting on them and the options
and funding marts of those UTC days, through Dagster, on the configured instance
(``DAGSTER_HOME``; when unset, ``$MKT_DATA_DIR/dagster_home``). With ``--replay`` the clients
talk to a local replay of the recordings in DIR, and the instrument universe is the one the
recordings cover (``mkt_platform/replay/recorded_instruments.yaml``) unless
``MKT_INSTRUMENTS_FILE`` says otherwise. ``--only DATASET[,DATASET]`` pulls only those raw
datasets and builds only the marts downstream of them. ``--from-lake`` pulls nothing and
builds the marts from what the lake holds: the warehouse rebuilt, the lake untouched (after
switching ``MKT_WAREHOUSE``, for example).

The terminal gets a line per step of the plan, the warnings of each step grouped (a line per
dataset and message, its days as ranges) and the tables of the marts built; dbt's output
goes to a log file under ``$MKT_DATA_DIR/logs``, and with ``--verbose`` to the terminal as
well, beside Dagster's log.

``mkt-platform report --start DATE --end DATE [--output FILE]`` writes a static HTML report
of the marts' charts and the rows they are drawn from (see :mod:`mkt_platform.report`).

``mkt-platform api [--host H] [--port P]`` serves the marts over HTTP (JSON, CSV, Parquet;
an OpenAPI schema at ``/docs``), on 127.0.0.1:8000 by default (see :mod:`mkt_platform.api`).

``mkt-platform dev [--replay DIR]`` starts the Dagster UI (``dg dev``) on the same instance,
against the replay of the recordings in DIR when given (see :mod:`mkt_platform.dev`).
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
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from mkt_platform.lib.materialize import RangeStep, StepResult

#: The embedded default instance configuration (SQLite), shipped with the package.
EMBEDDED_DAGSTER_YAML = Path(__file__).resolve().parent / "dagster.yaml"


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
    """``sql`` rendered as a text table under ``title`` (empty if no rows). Values are shown
    as DuckDB gives them (a DECIMAL keeps its trailing zeros); columns of numbers are
    right-aligned."""
    import tabulate

    try:
        cursor = con.execute(sql)
    except Exception:  # the mart does not exist yet (nothing was built)
        return []
    names = [c[0] for c in cursor.description]
    rows = [["" if v is None else str(v) for v in row] for row in cursor.fetchall()]
    if not rows:
        return []
    align = ["right" if all(_is_number(r[i]) for r in rows) else "left" for i in range(len(names))]
    # tabulate pads a header two wider than its column by default (MIN_PADDING): not here.
    padding, tabulate.MIN_PADDING = tabulate.MIN_PADDING, 0
    try:
        text = tabulate.tabulate(
            rows, headers=names, tablefmt="simple", disable_numparse=True, colalign=align
        )
    finally:
        tabulate.MIN_PADDING = padding
    return ["", title, *(line.rstrip() for line in text.splitlines())]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text == ""
    return True


#: The tables the main command ends with: the marts each reads, its title and its query.
SUMMARY_TABLES = (
    (
        {"session_ohlc_daily"},
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
    ),
    (
        {"session_ohlc_weekly", "session_ohlc_monthly"},
        "Weekly and monthly sessions (marts.session_ohlc_weekly, _monthly): the latest",
        """
        with sessions as ({weekly_and_monthly})
        select session, source, instrument, count(*) over w as sessions,
               strftime(session_start, '%Y-%m-%d %H:%M') as latest_start,
               open, high, low, close, chclose as "chclose %", day_count as days
        from sessions
        window w as (partition by session, source, instrument)
        qualify row_number() over (
            partition by session, source, instrument order by session_start desc) = 1
        order by session desc, source, instrument
        """,
    ),
    (
        {"option_ohlc_hourly"},
        "Options (marts.option_ohlc_hourly): the 8 most traded instruments of the busiest hour",
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
    ),
    (
        {"option_smile_hourly", "option_term_structure_hourly"},
        "Smile (marts.option_smile_hourly, iv %): each expiry at the latest hour with trades",
        """
        select strftime(hour, '%Y-%m-%d %H:%M') as hour, strftime(expiry, '%d%b%y') as expiry,
               round(days_to_expiry, 1) as days, round(forward_price, 0) as forward,
               round(iv_25d_put, 2) as "25d put", round(atm_iv, 2) as atm,
               round(iv_25d_call, 2) as "25d call", round(risk_reversal_25d, 2) as rr,
               round(butterfly_25d, 2) as bf, trades
        from marts.option_smile_hourly
        where hour = (select max(hour) from marts.option_smile_hourly)
        order by days
        """,
    ),
    (
        {"equity_session_ohlc_daily"},
        "US equity sessions (marts.equity_session_ohlc_daily): regular hours, New York time, "
        "the latest 5 per ticker",
        """
        select ticker, strftime(session_date, '%Y-%m-%d') as day,
               strftime(session_start at time zone 'America/New_York', '%H:%M') || '-' ||
               strftime(session_end at time zone 'America/New_York', '%H:%M') as hours,
               open, high, low, close, volume, round(vwap, 4) as vwap, bar_count as bars,
               is_early_close as early
        from marts.equity_session_ohlc_daily
        qualify row_number() over (partition by ticker order by session_date desc) <= 5
        order by ticker desc, session_date
        """,
    ),
    (
        {"equity_option_session_ohlc_daily"},
        "SPY options (marts.equity_option_session_ohlc_daily): the latest day's 8 most traded",
        """
        select strftime(session_date, '%Y-%m-%d') as day, ticker, contract_type as type,
               strike_price as strike, strftime(expiration_date, '%Y-%m-%d') as expiry,
               open, high, low, close, volume, round(moneyness, 4) as "K/S",
               round(time_to_expiry_days, 2) as "days"
        from marts.equity_option_session_ohlc_daily
        where session_date = (select max(session_date) from marts.equity_option_session_ohlc_daily)
        order by volume desc, ticker limit 8
        """,
    ),
    (
        {"volatility_risk_premium_daily"},
        "Volatility (marts.volatility_risk_premium_daily, realized_volatility_rolling): the "
        "latest day with 30 complete sessions, annualized %",
        """
        with premium as (
            select * from marts.volatility_risk_premium_daily
            where realized_volatility_trailing_30d is not null
            qualify row_number() over (partition by currency order by day desc) = 1
        )
        select p.currency, strftime(p.day, '%Y-%m-%d') as day,
               round(p.implied_volatility * 100, 2) as "DVOL",
               round(r.rv_close_to_close_30d * 100, 2) as "RV c-c",
               round(r.rv_parkinson_30d * 100, 2) as "Parkinson",
               round(r.rv_garman_klass_30d * 100, 2) as "G-K",
               round(r.rv_rogers_satchell_30d * 100, 2) as "R-S",
               round(r.rv_yang_zhang_30d * 100, 2) as "Y-Z",
               round(p.premium_trailing_30d * 100, 2) as "premium",
               round(p.atm_iv_30d * 100, 2) as "ATM 30d"
        from premium p
        join marts.realized_volatility_rolling r
          on r.source = 'binance' and r.instrument = p.realized_instrument
         and r.session_start = (
             select max(session_start) from marts.realized_volatility_rolling x
             where x.source = 'binance' and x.instrument = p.realized_instrument
               and x.session_start <= p.day::timestamptz)
        order by p.currency
        """,
    ),
)


def _summary(built: set[str]) -> list[str]:
    """The tables (:data:`SUMMARY_TABLES`) of the marts in ``built`` (the run's plan)."""
    from mkt_platform import warehouse

    if not warehouse.exists():
        return []
    with warehouse.connect(read_only=True) as con:
        existing = {
            name
            for (name,) in con.execute(
                "select table_name from duckdb_tables() where schema_name = 'marts' "
                "and database_name = current_database()"
            ).fetchall()
        }
        # a warehouse that has built weekly sessions but no monthly one yet (or the reverse)
        # still shows the one it has
        periods = [
            f"select '{period}' as session, source, instrument, session_start, open, high, "
            f"low, close, chclose, day_count from marts.session_ohlc_{period}"
            for period in ("weekly", "monthly")
            if f"session_ohlc_{period}" in existing
        ]
        weekly_and_monthly = " union all ".join(periods) or "select null where false"
        return [
            line
            for marts, title, sql in SUMMARY_TABLES
            if marts & built
            for line in _table(con, title, sql.replace("{weekly_and_monthly}", weekly_and_monthly))
        ]


class _RunLog:
    """A log file that never fails the run writing to it: a write that the disk refuses (full,
    read-only) is dropped, and the run's own outcome says what went wrong. The file is created
    at the first write (a plan with no dbt step leaves none). With ``echo``, every write is
    also written there (the terminal, under ``--verbose``)."""

    def __init__(self, path: Path, echo: TextIO | None = None) -> None:
        self.path = path
        self.echo = echo
        self._file: Any = None
        self._failed = False

    @property
    def written(self) -> bool:
        return self._file is not None

    def write(self, text: str) -> int:
        if self.echo is not None:
            self.echo.write(text)
        if self._file is None and not self._failed:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a")  # noqa: SIM115
            except OSError:
                self._failed = True
        if self._file is not None:
            with suppress(OSError):
                self._file.write(text)
        return len(text)

    def flush(self) -> None:
        if self.echo is not None:
            self.echo.flush()
        if self._file is not None:
            with suppress(OSError):
                self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            with suppress(OSError):
                self._file.close()


class _StepLines:
    """Each step of the plan on one line: its description when it starts, completed by its
    outcome when it ends (``[2/5] dbt sessions: 28 partitions 2023-04-28..2023-05-25 ...
    done in 10.2 s (run abcf1021)``), then the step's grouped warnings. With ``one_line``
    off (``--verbose``, when dbt's and Dagster's lines come in between; or output to a pipe,
    whose reader waits for whole lines) the outcome is a line of its own that repeats the
    step's number and label. (The progress protocol of
    :func:`mkt_platform.lib.materialize.run_plan`.)"""

    def __init__(self, out: TextIO, one_line: bool) -> None:
        self.out = out
        self.one_line = one_line
        self._name = ""
        self._open = False

    def _line(self, text: str, end: str = "\n") -> None:
        self.out.write(text + end)
        self.out.flush()

    def step_started(self, number: int, total: int, step: RangeStep) -> None:
        self._name = f"[{number}/{total}] {step.label}"
        if self.one_line:
            self._line(f"{step.describe(number, total)} ... ", end="")
            self._open = True
        else:
            self._line(step.describe(number, total))

    def step_ended(self, result: StepResult) -> None:
        self._line(result.outcome() if self._open else f"{self._name}: {result.outcome()}")
        self._open = False

    def note(self, line: str) -> None:
        if self._open:
            self._line("")
            self._open = False
        self._line(f"    {line}")


def _shown(path: Path | str) -> str:
    """``path`` relative to the working directory when it lies under it, as a user types it
    (a URL, such as an ``s3://`` lake, as it is)."""
    if "://" in str(path):
        return str(path)
    path = Path(path)
    with suppress(ValueError, OSError):
        return str(path.absolute().relative_to(Path.cwd()))
    return str(path)


def materialize(args: argparse.Namespace) -> int:
    from mkt_platform import settings, warehouse

    with ExitStack() as stack:
        if args.replay:
            from mkt_platform.replay import ReplayServer

            server = stack.enter_context(ReplayServer(args.replay, port=args.replay_port))
            os.environ.update(server.platform_environment())
        _dagster_home()

        from mkt_platform.definitions import build_definitions
        from mkt_platform.lib.instruments import (
            InstrumentsFileError,
            instruments_file,
            load_instruments,
        )
        from mkt_platform.lib.materialize import DatasetError, RangeError, plan, run_plan

        try:
            universe = load_instruments()
            settings.warehouse_kind()
            from mkt_platform.lib import s3

            if s3.in_use():
                settings.s3_settings()
        except (InstrumentsFileError, settings.SettingError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if not universe:
            print(f"warning: {instruments_file()} lists no instrument")
        old = warehouse.superseded_file()
        if old is not None:
            print(
                f"note: {_shown(old)} is a DuckDB-file warehouse from before DuckLake became "
                f"the default; this run builds the DuckLake {warehouse.describe()}. To move "
                "every mart over, run `mkt-platform materialize --start FIRST --end LAST "
                "--from-lake` over the lake's days (nothing is pulled, the lake is only read); "
                "to keep the file, set MKT_WAREHOUSE=duckdb."
            )
        defs = build_definitions()
        try:
            steps = plan(defs, args.start, args.end, only=args.only)
        except (RangeError, DatasetError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if args.from_lake:
            # the dbt steps only (those in the warehouse pool): nothing is pulled, and the lake
            # is only read
            steps = [step for step in steps if step.pool is not None]
        elif args.replay:
            print(
                f"replay of {_shown(args.replay)} on {server.url}: "
                "Binance, Hyperliquid, Deribit and Polygon are pulled from it"
            )
        else:
            print(
                f"Binance: {settings.binance_base_url()}; Hyperliquid: "
                f"{settings.hyperliquid_base_url()}; Deribit: "
                f"{settings.deribit_history_base_url()} (history), "
                f"{settings.deribit_base_url()} (live)"
            )
        print(
            f"instruments: {_shown(instruments_file())}; "
            f"session anchor {settings.session_anchor_hour():02d}:00 UTC"
        )
        graph = defs.resolve_asset_graph()
        from mkt_platform.lib import lake, runs

        if args.from_lake:
            print(
                "raw datasets: none pulled (--from-lake): the marts are built from "
                f"{_shown(str(lake.lake_root()))} as it is"
            )
        else:
            pulled = sorted(
                k.to_user_string()
                for step in steps
                if step.pool is None
                for k in step.selection.resolve(graph)
            )
            print(f"raw datasets: {', '.join(pulled)}")
        # the raw lake, and the local lake folder (the quarantine) when the raw lake is on S3
        roots = [lake.lake_root()]
        if isinstance(roots[0], lake.ObjectPath):
            roots.append(settings.lake_dir())
        swept = [path for root in roots for path in lake.sweep_stale_temp_files(root)]
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
            # to a log file, and to the terminal too with --verbose; Dagster's console log
            # likewise only with --verbose: the code's warnings are read back from the run's
            # events and shown grouped under their step.
            terminal = sys.stdout
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            run_log = _RunLog(
                settings.data_dir() / "logs" / f"materialize-{stamp}.log",
                echo=terminal if args.verbose else None,
            )
            try:
                with redirect_stdout(run_log):  # type: ignore[type-var]
                    results = run_plan(
                        defs,
                        steps,
                        instance,
                        progress=_StepLines(
                            terminal, one_line=terminal.isatty() and not args.verbose
                        ),
                        log_level="INFO" if args.verbose else "CRITICAL",
                        pool_wait_seconds=settings.pool_wait_seconds(),
                    )
            except runs.PoolWaitTimeout as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            finally:
                run_log.close()
    failed = {name: why for r in results for name, why in r.failed.items()}
    skipped = sorted({name for r in results for name in r.skipped})
    built = {k.to_user_string() for s in steps for k in s.selection.resolve(graph)}
    print()
    if run_log.written:
        print(f"dbt log:   {_shown(run_log.path)}")
    print(f"lake:      {_shown(str(lake.lake_root()))}")
    if warehouse.exists():
        path = warehouse.catalog_path()
        where = (
            _shown(path)
            if warehouse.kind() == "duckdb"
            else f"DuckLake {_shown(path) if path else warehouse.catalog()}, "
            f"{_shown(warehouse.data_path().rstrip('/'))}/"
        )
        print(f"warehouse: {where} (schemas staging, intermediate, marts)")
    try:
        summary = _summary(built)
    except Exception as exc:  # the warehouse is held by another process, or unreadable
        summary = [f"(no summary: the warehouse cannot be read now: {exc})"]
    for line in summary:
        print(line)
    print()
    # The UI on the same instance (DAGSTER_HOME, or the data dir's), against the same replay.
    command = _shown(Path(sys.executable).parent / "mkt-platform") + " dev"
    if args.replay:
        command += f" --replay {_shown(args.replay)}"
    print(f"Dagster UI: {command}   (then open http://127.0.0.1:3000)")
    if failed or skipped or len(results) < len(steps):
        print(file=sys.stderr)
        for name, why in failed.items():
            print(f"FAILED: {name}: {why}", file=sys.stderr)
        if skipped:
            print(f"SKIPPED (an upstream asset failed): {', '.join(skipped)}", file=sys.stderr)
        print("The run logs are in the Dagster UI (command above).", file=sys.stderr)
        return 1
    return 0


def _report(args: argparse.Namespace) -> int:
    from mkt_platform.report import default_path, write_report

    path = args.output or default_path(args.start, args.end)
    try:
        written = write_report(args.start, args.end, path)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the warehouse is held by a writer, or unreadable
        print(f"error: the warehouse cannot be read now: {exc}", file=sys.stderr)
        return 1
    print(f"report: {_shown(written)}")
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


def _add_day_range(parser: argparse.ArgumentParser) -> None:
    """``--start`` and ``--end``, the first and last UTC day (ISO dates)."""
    parser.add_argument("--start", type=date.fromisoformat, required=True, help="first day")
    parser.add_argument("--end", type=date.fromisoformat, required=True, help="last day")


def main(argv: list[str] | None = None) -> int:
    # backfill_policy and pools are marked beta; the warning says nothing a user can act on.
    warnings.filterwarnings("ignore", message=".*(beta|preview).*", category=Warning)
    from mkt_platform import dev

    parser = argparse.ArgumentParser(prog="mkt-platform", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "materialize",
        help="materialize every venue's raw pulls and the marts for a range of days",
        description="Materialize every venue's raw assets for START..END (inclusive), the "
        "sessions starting on those days and the options and funding marts of those UTC "
        "days, through Dagster on the configured instance.",
    )
    _add_day_range(run)
    dev.add_replay_arguments(run)
    run.add_argument(
        "--only",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        action="extend",
        metavar="DATASET[,DATASET]",
        help="pull only these raw datasets (asset keys, e.g. binance_klines_1h) and build only "
        "the marts downstream of them (the demo asks each dataset for the days the "
        "recordings hold)",
    )
    run.add_argument(
        "--from-lake",
        action="store_true",
        help="pull nothing: build only the marts, from what the lake holds (to rebuild the "
        "warehouse, e.g. after switching MKT_WAREHOUSE to ducklake)",
    )
    run.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show dbt's output (a line per model and test) and Dagster's log as they come; "
        "by default dbt's output goes only to the log file named at the end",
    )
    dev.add_parser(commands)
    report = commands.add_parser(
        "report",
        help="write a static HTML report of the marts (charts and their numbers)",
        description="Write one self-contained HTML file with the charts of the session, "
        "volatility and options marts for the UTC days START..END and the rows each is drawn "
        "from (default $MKT_DATA_DIR/reports/report_START_END.html).",
    )
    _add_day_range(report)
    report.add_argument("--output", type=Path, help="the HTML file to write")
    api = commands.add_parser(
        "api",
        help="serve the marts over HTTP (JSON, CSV, Parquet) for charts, bots and notebooks",
        description="Serve the read API over the warehouse until Ctrl-C: the OpenAPI schema "
        "at /docs; with MKT_API_TOKEN set, every data request needs that bearer token.",
    )
    api.add_argument("--host", help="address to listen on (default MKT_API_HOST, else 127.0.0.1)")
    api.add_argument("--port", type=int, help="port to listen on (default MKT_API_PORT, else 8000)")
    commands.add_parser(
        "capture",
        help="capture Hyperliquid candles and asset contexts and Binance liquidations from "
        "their WebSocket streams into the lake, until stopped",
        description="Capture the WebSocket streams into hourly Parquet files of the lake, a "
        "row per minute (every liquidation kept), until SIGTERM or Ctrl-C; a heartbeat line "
        "per stream every 5 minutes.",
    )
    commands.add_parser(
        "code-server",
        add_help=False,
        help="serve the code location over gRPC (dagster api grpc, the same options), each "
        "run forked from a process that has imported the platform",
        description="dagster api grpc with its options (e.g. --module-name "
        "mkt_platform.definitions), each run's process forked from a forkserver that "
        "imported the platform once (mkt_platform/code_server.py).",
    )
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["code-server"]:
        from mkt_platform import code_server

        # Dagster's server answers SIGTERM with SIGINT's handler: not the ignored one that a
        # process started in the background of a script inherits (see below).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        return code_server.main(argv[1:])
    args = parser.parse_args(argv)
    # Started in the background of a script, a process inherits SIGINT ignored; Dagster sets
    # SIGTERM to SIGINT's handler after each run, which would leave the CLI deaf to SIGTERM
    # from its second step on (and `dev` deaf to Ctrl-C). Ctrl-C and SIGTERM always stop it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from mkt_platform.settings import enable_event_batches

    # Dagster writes a run's planned events and each partitioned output's materializations
    # as batches (in the UI's process, the daemon's, and this one).
    enable_event_batches()
    if args.command == "dev":
        return dev.dev(args, _dagster_home())
    if args.command == "capture":
        from mkt_platform.capture.service import serve as capture

        return capture()
    if args.command == "api":
        from mkt_platform import api as read_api
        from mkt_platform import settings

        try:
            host = args.host or settings.api_host()
            port = args.port if args.port is not None else settings.api_port()
            return read_api.serve(host, port)
        except settings.SettingError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.end < args.start:
        parser.error("--end is before --start")
    if args.command == "report":
        return _report(args)
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
