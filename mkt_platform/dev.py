"""``mkt-platform dev [--replay DIR]``: the Dagster UI (``dg dev``) with every setting it needs.

Without ``--replay`` it is ``dg dev`` on the instance of ``DAGSTER_HOME`` (when unset,
``$MKT_DATA_DIR/dagster_home``, the one ``mkt-platform materialize`` and ``make demo`` use),
talking to the exchanges of the base-URL settings.

With ``--replay DIR`` it first starts the replay server of the recordings in DIR, points the
exchanges' base URLs at it and the instrument universe at what the recordings cover
(unless ``MKT_INSTRUMENTS_FILE`` says otherwise), exactly as ``materialize --replay`` does; a
backfill launched from the UI then pulls the recordings. Every base URL is then on this
machine, so the schedules that pull today's partitions start stopped (replay mode: the
recordings hold no today; see :func:`mkt_platform.settings.replay_mode`).

The replay server lives in this process and ``dg dev`` is its child: Ctrl-C (or SIGTERM)
stops both.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

#: The repository root: ``dg dev`` finds the project (``pyproject.toml``, ``[tool.dg]``) there.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def dg_command(host: str, port: int) -> list[str]:
    """``dg dev`` of this Python's environment, serving the UI on ``host:port``."""
    return [str(Path(sys.executable).parent / "dg"), "dev", "--host", host, "--port", str(port)]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def dev(args: argparse.Namespace, dagster_home: Path) -> int:
    """Run the UI until it exits or is interrupted; returns its exit code (130 on Ctrl-C)."""
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    with ExitStack() as stack:
        if args.replay:
            from mkt_platform.replay import ReplayServer

            server = stack.enter_context(ReplayServer(args.replay, port=args.replay_port))
            env.update(server.platform_environment())
            print(
                f"replay of {args.replay} on {server.url}: every exchange is pulled from it; "
                "the pull schedules start stopped (the recordings hold no today)",
                flush=True,
            )
        print(
            f"Dagster UI on http://{args.host}:{args.port} (instance {dagster_home}); "
            "Ctrl-C stops it",
            flush=True,
        )
        child = subprocess.Popen(
            dg_command(args.host, args.port),
            cwd=PROJECT_ROOT,
            env=env,
            # dg dev stops on SIGINT: it must not inherit SIGINT ignored from a background start.
            preexec_fn=_default_sigint,
        )
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            return child.wait()
        except KeyboardInterrupt:
            child.send_signal(signal.SIGINT)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            return 130
        finally:
            signal.signal(signal.SIGTERM, previous)


def add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    """``--replay DIR`` and ``--replay-port``, as ``materialize`` and ``dev`` take them."""
    parser.add_argument(
        "--replay",
        type=Path,
        metavar="DIR",
        help="serve the recorded exchange data in DIR (e.g. ../shared/data) and pull from it",
    )
    parser.add_argument("--replay-port", type=int, default=0, help="port of the replay server")


def add_parser(commands) -> None:
    """The ``dev`` subcommand of ``mkt-platform``."""
    parser = commands.add_parser(
        "dev",
        help="start the Dagster UI (dg dev), optionally against the replay of the recordings",
        description="Start the Dagster UI (dg dev) on the platform's instance. With --replay "
        "DIR, against a replay of the recordings in DIR: every exchange base URL and the "
        "instrument universe are set as materialize --replay sets them, and the schedules that "
        "pull today's partitions start stopped (the recordings hold no today).",
    )
    add_replay_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address the UI listens on")
    parser.add_argument("--port", type=int, default=3000, help="port of the UI")
