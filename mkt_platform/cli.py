"""``mkt-platform``: the command line of the platform.

``mkt-platform materialize --start DATE --end DATE [--replay DIR]`` materializes the raw
pulls and every session mart for the sessions starting on those days, through Dagster, on the
configured instance (``DAGSTER_HOME``; when unset, ``$MKT_DATA_DIR/dagster_home``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import warnings
from contextlib import ExitStack
from datetime import date
from pathlib import Path

#: The embedded default instance configuration (SQLite), at the repository root.
EMBEDDED_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"


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


def _summary(warehouse: Path) -> list[str]:
    import duckdb

    if not warehouse.exists():
        return []
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.sql(
            "select source, instrument, count(*), min(session_start)::varchar, "
            "max(session_start)::varchar, count(*) filter (where not is_complete) "
            "from marts.session_ohlc_daily group by all order by all"
        ).fetchall()
    return [
        f"  {src}/{inst}: {n} sessions {first[:16]} .. {last[:16]} UTC ({bad} incomplete)"
        for src, inst, n, first, last, bad in rows
    ]


def materialize(args: argparse.Namespace) -> int:
    from mkt_platform import settings

    with ExitStack() as stack:
        if args.replay:
            from mkt_platform.replay import ReplayServer

            server = stack.enter_context(ReplayServer(args.replay, port=args.replay_port))
            os.environ["BINANCE_BASE_URL"] = server.base_url("binance")
            print(f"replay server on {server.url}, serving recorded data from {args.replay}")
        home = _dagster_home()

        import dagster as dg

        from mkt_platform.definitions import build_definitions
        from mkt_platform.lib.materialize import RangeError, plan, run_plan

        defs = build_definitions()
        try:
            steps = plan(defs, args.start, args.end)
        except RangeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(
            f"Binance: {settings.binance_base_url()}; session anchor "
            f"{settings.session_anchor_hour():02d}:00 UTC; Dagster instance {home}"
        )
        with dg.DagsterInstance.get() as instance:
            results = run_plan(defs, steps, instance)
    failed = [r for r in results if not r.success] or len(results) < len(steps)
    print()
    print(f"lake:      {settings.lake_dir()}")
    print(f"warehouse: {settings.warehouse_path()} (table marts.session_ohlc_daily)")
    for line in _summary(settings.warehouse_path()):
        print(line)
    dagster = Path(sys.executable).parent / "dagster"
    print(f"Dagster UI: DAGSTER_HOME={home} {dagster} dev   (then open http://127.0.0.1:3000)")
    if failed:
        print("FAILED: see the run logs in the Dagster UI", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    # backfill_policy and pools are marked beta; the warning says nothing a user can act on.
    warnings.filterwarnings("ignore", message=".*(beta|preview).*", category=Warning)
    parser = argparse.ArgumentParser(prog="mkt-platform", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "materialize",
        help="materialize raw pulls and session marts for a range of days",
        description="Materialize the raw assets and every session starting on START..END "
        "(inclusive), through Dagster on the configured instance.",
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
    return materialize(args)


if __name__ == "__main__":
    sys.exit(main())
