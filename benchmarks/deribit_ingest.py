"""Benchmark: ingest one SYNTHETIC Deribit day of 200,000 option trades through the raw asset.

A synthetic day (clearly labelled: ``SYNTHETIC_deribit_trades_BTC_option_<day>.jsonl``, in
Deribit's exact trade format) is served by the replay server in its own process; this process
materializes ``deribit_option_trades`` for that day from it (paging 1000 trades a request,
streaming each page to Parquet) and prints wall time, pages, rows and the peak resident memory
of the ingesting process (Dagster and pyarrow included). Not a test: it prints figures.

    python benchmarks/deribit_ingest.py [--trades 200000] [--day 2024-03-15]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=200_000)
    parser.add_argument("--day", type=date.fromisoformat, default=date(2024, 3, 15))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    from mkt_platform.testing.synthetic_deribit import write_synthetic_trades

    with tempfile.TemporaryDirectory(prefix="mkt-bench-deribit-") as tmp:
        replay_dir = Path(tmp) / "replay"
        (replay_dir / "deribit").mkdir(parents=True)
        started = time.perf_counter()
        path = write_synthetic_trades(replay_dir / "deribit", args.day, args.trades, seed=7)
        print(
            f"SYNTHETIC day written: {path.name} ({path.stat().st_size / 2**20:.1f} MiB) "
            f"in {time.perf_counter() - started:.1f}s"
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "mkt_platform.replay", "--data-dir", str(replay_dir)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            urls = {}
            while "deribit_history" not in urls:
                line = server.stdout.readline()
                if not line:
                    raise RuntimeError("replay server did not start")
                name, _, url = line.strip().partition(": ")
                urls[name] = url
            os.environ["MKT_DATA_DIR"] = str(Path(tmp) / "data")
            os.environ["DERIBIT_HISTORY_BASE_URL"] = urls["deribit_history"]
            os.environ["DERIBIT_BASE_URL"] = urls["deribit"]
            import dagster as dg

            from mkt_platform.defs.deribit.datasets import OPTION_TRADES
            from mkt_platform.defs.deribit.resources import DeribitClient
            from mkt_platform.lib import lake

            before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            started = time.perf_counter()
            with dg.instance_for_test() as instance:
                result = dg.materialize(
                    [OPTION_TRADES.asset()],
                    partition_key=args.day.isoformat(),
                    resources={
                        "deribit": DeribitClient(
                            base_url=urls["deribit"], history_base_url=urls["deribit_history"]
                        )
                    },
                    instance=instance,
                )
                seconds = time.perf_counter() - started
                (record,) = instance.fetch_materializations(
                    dg.AssetKey("deribit_option_trades"), limit=1
                ).records
                meta = record.asset_materialization.metadata
            peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            out = lake.raw_partition_path("deribit", "option_trades", args.day.isoformat())
        finally:
            server.terminate()
            server.wait()
    print(f"success: {result.success}")
    print(
        f"trades ingested: {meta['trades'].value}, pages: {meta['pages'].value}, "
        f"file: {meta['file_bytes'].value / 2**20:.1f} MiB ({out.name})"
    )
    print(f"wall time: {seconds:.1f}s ({meta['trades'].value / seconds:,.0f} trades/s)")
    print(
        f"peak RSS of the ingesting process: {peak_kib / 1024:.0f} MiB "
        f"(before the run: {before_kib / 1024:.0f} MiB, after imports)"
    )
    return 0 if result.success else 1


if __name__ == "__main__":
    raise SystemExit(main())
