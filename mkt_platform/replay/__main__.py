"""Run the replay server from the command line until Ctrl-C.

    python -m mkt_platform.replay --data-dir /work/shared/data --port 8765

prints one ``NAME: BASE_URL`` line per emulated exchange, e.g.
``binance: http://127.0.0.1:8765/binance``; point the client's base URL there
(for the platform: ``BINANCE_BASE_URL``).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from types import FrameType

from mkt_platform.replay.server import ReplayServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mkt_platform.replay",
        description="Serve recorded exchange REST responses locally (offline tests, demos).",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        required=True,
        help="folder of recordings, one subfolder per exchange",
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (default 0: a free port)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        server = ReplayServer(args.data_dir, host=args.host, port=args.port)
    except FileNotFoundError as exc:
        parser.error(str(exc))

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # SIGTERM as well as Ctrl-C, so a supervising process can stop it cleanly too.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with server:
        for name in server.exchanges:
            print(f"{name}: {server.base_url(name)}", flush=True)
        print("serving; Ctrl-C to stop", flush=True)
        # wait() with a timeout so signals are handled promptly on every platform.
        while not stop.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
