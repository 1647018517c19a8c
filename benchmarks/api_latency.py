"""The read API's latency for a month of daily sessions of three instruments: p50 and p95 over
N requests (200 by default), on a quiet warehouse and while a backfill writes it.

A warehouse is built in a temporary data dir from the replay of the recordings (Binance's
BTCUSDT, ETHUSDT and SOLUSDT 1h klines, 2023-03-01..03-31, ``--only binance_klines_1h``);
then ``mkt-platform api`` serves it, and one client asks, one request after another,
``/sessions/daily?instrument=BTCUSDT&instrument=ETHUSDT&instrument=SOLUSDT&start=2023-03-01
&end=2023-03-31`` (93 rows). The second series runs while ``mkt-platform materialize`` backfills
2023-04-01..04-30 into the same warehouse (pulls and dbt), and counts only the requests
answered while it ran (as many as fit).

On DuckLake (the default here) every request is answered during the backfill; on the DuckDB
file (``--warehouse duckdb``) a request while dbt writes gets 503, counted apart.

    .venv/bin/python benchmarks/api_latency.py --replay ../shared/data [--requests 200]
        [--warehouse ducklake|duckdb]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
QUERY = {
    "instrument": ["BTCUSDT", "ETHUSDT", "SOLUSDT"],
    "start": "2023-03-01",
    "end": "2023-03-31",
}


def materialize(env: dict[str, str], replay: str, start: str, end: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "mkt-platform"), "materialize", "--start", start, "--end", end,
         "--only", "binance_klines_1h", "--replay", replay],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def series(base: str, count: int, while_running: subprocess.Popen | None = None) -> dict:
    """``count`` requests one after another, or with ``while_running`` as many as fit while
    it runs: the latencies of the 200s in ms, and how many got another status."""
    latencies: list[float] = []
    other = 0
    with httpx.Client(base_url=base, timeout=60) as client:
        while True:
            if while_running is None and len(latencies) + other >= count:
                break
            if while_running is not None and while_running.poll() is not None:
                break
            started = time.perf_counter()
            response = client.get("/sessions/daily", params=QUERY)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code == 200:
                assert response.json()["count"] == 93, response.json()["count"]
                latencies.append(elapsed)
            else:
                other += 1
    return {"latencies": latencies, "other": other}


def describe(name: str, result: dict) -> str:
    latencies = sorted(result["latencies"])
    if not latencies:
        return f"{name}: no request answered 200 ({result['other']} other)"
    p95 = latencies[min(len(latencies) - 1, round(0.95 * len(latencies)) - 1)]
    refused = f"; {result['other']} answered otherwise (503 while dbt wrote)"
    return (
        f"{name}: {len(latencies)} requests, p50 {statistics.median(latencies):.1f} ms, "
        f"p95 {p95:.1f} ms, max {latencies[-1]:.1f} ms" + (refused if result["other"] else "")
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replay", required=True, help="the recordings (../shared/data)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warehouse", choices=("ducklake", "duckdb"), default="ducklake")
    args = parser.parse_args()
    replay = str(Path(args.replay).resolve())
    with tempfile.TemporaryDirectory(prefix="mkt-api-bench-") as folder:
        env = {
            **os.environ,
            "MKT_DATA_DIR": folder,
            "MKT_WAREHOUSE": args.warehouse,
            "MKT_CHARTS": "0",
        }
        env.pop("DAGSTER_HOME", None)
        env.pop("MKT_API_TOKEN", None)
        started = time.monotonic()
        build = materialize(env, replay, "2023-03-01", "2023-03-31")
        assert build.wait() == 0, build.stdout.read()
        print(f"warehouse ({args.warehouse}) built in {time.monotonic() - started:.0f} s")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        api = subprocess.Popen(
            [str(BIN / "mkt-platform"), "api", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"{base}/health", timeout=2)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the API did not start"
                    time.sleep(0.2)
            series(base, 10)  # warm-up: the first request attaches the warehouse
            print(describe("quiet", series(base, args.requests)))
            backfill = materialize(env, replay, "2023-04-01", "2023-04-30")
            started = time.monotonic()
            during = series(base, args.requests, while_running=backfill)
            print(describe("during a backfill", during))
            output = backfill.communicate()[0]
            print(f"the backfill (2023-04, pulls and dbt) ran {time.monotonic() - started:.0f} s, "
                  f"exit {backfill.returncode}")  # fmt: skip
            if backfill.returncode:
                print("its output ends:\n" + "\n".join(output.splitlines()[-12:]))
        finally:
            api.terminate()
            api.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
