"""Benchmark: the capture service under a flood. Prints figures; asserts nothing.

`mkt-platform capture` runs as a process against the WebSocket replay, which sends SYNTHETIC
Binance ``forceOrder`` frames (made here in Binance's exact format; no real liquidation
stream is recorded): first at a steady rate, then as fast as the replay can write them (a
flood far above 100x the steady rate). Printed for each phase: frames sent, the seconds
until the capture had consumed them, the frames per second that makes, the capture's CPU
seconds, and at the end its peak RSS (``VmHWM``), the frames it dropped (its bounded queue
was full) and the rows in the lake.

    .venv/bin/python benchmarks/capture_flood.py [--steady 2000 --rate 200 --flood 100000]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from mkt_platform.replay.ws import WebSocketReplay

T0 = 1_767_600_000_000  # 2026-01-05 08:00 UTC


def frame(i: int) -> dict:
    """SYNTHETIC liquidation ``i``: 50 a simulated minute, on three symbols."""
    trade_time = T0 + (i // 50) * 60_000 + (i % 50) * 1000
    return {
        "e": "forceOrder",
        "E": trade_time + 5,
        "o": {
            "s": ("BTCUSDT", "ETHUSDT", "SOLUSDT")[i % 3],
            "S": "SELL" if i % 2 else "BUY",
            "o": "LIMIT",
            "f": "IOC",
            "q": "0.014",
            "p": f"{9900 + i % 100}.10",
            "ap": f"{9901 + i % 100}.20",
            "X": "FILLED",
            "l": "0.014",
            "z": "0.014",
            "T": trade_time,
        },
    }


def proc_figures(pid: int) -> tuple[float, int]:
    """CPU seconds and peak RSS (bytes) of ``pid``, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    peak = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return cpu, int(peak.group(1)) * 1024 if peak else 0


def lake_rows(lake: Path) -> int:
    files = lake.glob("raw/binance_futures/liquidations_stream/date=*/hour=*/*.parquet")
    return sum(pq.read_metadata(p).num_rows for p in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steady", type=int, default=2000, help="frames at the steady rate")
    parser.add_argument("--rate", type=float, default=200.0, help="steady frames per second")
    parser.add_argument("--flood", type=int, default=100_000, help="frames in the flood")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, WebSocketReplay() as replay:
        universe = Path(tmp, "instruments.yaml")
        universe.write_text("instruments: []\n")
        env = {
            **os.environ,
            "MKT_DATA_DIR": str(Path(tmp, "data")),
            "MKT_INSTRUMENTS_FILE": str(universe),
            "MKT_CAPTURE_BINANCE_LIQUIDATIONS_URL": replay.url,
        }
        cli = Path(sys.executable).parent / "mkt-platform"
        log = Path(tmp, "capture.log")
        with open(log, "w") as out:
            capture = subprocess.Popen([str(cli), "capture"], env=env, stdout=out, stderr=out)
        replay.wait_for_clients(1)
        sent, cpu_before = 0, proc_figures(capture.pid)[0]
        started = time.perf_counter()
        for i in range(args.steady):
            replay.send([frame(i)])
            time.sleep(1 / args.rate)
        sent = args.steady
        steady_s = time.perf_counter() - started
        cpu_steady = proc_figures(capture.pid)[0] - cpu_before
        print(
            f"steady: {sent:,} frames at {args.rate:.0f}/s in {steady_s:.1f} s; capture "
            f"{cpu_steady:.2f} CPU-s ({cpu_steady / steady_s:.0%} of a core)"
        )
        started, cpu_before = time.perf_counter(), proc_figures(capture.pid)[0]
        batch = 1000
        for first in range(sent, sent + args.flood, batch):
            replay.send([frame(i) for i in range(first, min(first + batch, sent + args.flood))])
        sent += args.flood
        written_s = time.perf_counter() - started
        # consumed: the lake holds every frame but the last simulated minute's (buffered
        # until the stop), or stops growing (the rest was dropped)
        lake, rows, still = Path(tmp, "data", "lake"), -1, time.perf_counter()
        while time.perf_counter() - still < 3:
            now_rows = lake_rows(lake)
            if now_rows != rows:
                rows, still = now_rows, time.perf_counter()
            if now_rows >= sent - 50:
                break
            time.sleep(0.05)
        flood_s = still - started  # until the lake last grew
        cpu_flood = proc_figures(capture.pid)[0] - cpu_before
        _, peak = proc_figures(capture.pid)
        capture.send_signal(signal.SIGTERM)
        capture.wait(120)
        text = log.read_text()
        # the last heartbeat, written at the stop, holds the final count
        dropped = ([None, *re.findall(r"(\d+) dropped", text)])[-1]
        print(
            f"flood: {args.flood:,} frames written by the replay in {written_s:.1f} s, "
            f"consumed by the capture in {flood_s:.1f} s ({args.flood / flood_s:,.0f} frames/s "
            f"sustained); capture {cpu_flood:.2f} CPU-s"
        )
        print(
            f"capture peak RSS {peak / 2**20:.0f} MiB; dropped "
            f"{dropped or '?'} of {sent:,} frames; "
            f"{lake_rows(lake):,} rows in the lake"
        )


if __name__ == "__main__":
    main()
