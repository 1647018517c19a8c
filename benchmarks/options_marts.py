"""Benchmark: build the options marts over 30 SYNTHETIC days of Deribit trades (6 million).

Writes 30 days x 200,000 SYNTHETIC trades (``synthetic_trades_table``: Deribit's trade fields
in the lake schema, Parquet metadata ``synthetic: true``) straight into a temporary lake, then
times ``dbt build --select +tag:options_hourly`` (staging, option_ohlc_hourly,
option_expiry_hourly, option_atm_iv_hourly and all their data and unit tests) over the whole
range, and a one-day partition window, as Dagster runs it. Prints figures; asserts nothing.

    python benchmarks/options_marts.py [--days 30] [--trades-per-day 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path


def dbt_build(data_dir: Path, target: Path, variables: dict) -> tuple[float, str]:
    from mkt_platform.lib.dbt import DBT_PROJECT_DIR, dbt_executable

    started = time.perf_counter()
    done = subprocess.run(
        [
            dbt_executable(),
            "build",
            "--select",
            "+tag:options_hourly",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(target),
            "--vars",
            json.dumps(variables),
        ],
        env={**os.environ, "MKT_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    summary = next(
        (line for line in reversed(done.stdout.splitlines()) if "PASS=" in line), done.stdout[-500:]
    )
    if done.returncode:
        raise SystemExit(f"dbt build failed:\n{done.stdout[-3000:]}")
    return seconds, summary.split("  ", 1)[-1].strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--trades-per-day", type=int, default=200_000)
    parser.add_argument("--first-day", type=date.fromisoformat, default=date(2024, 3, 1))
    args = parser.parse_args()

    from mkt_platform.lib import lake
    from mkt_platform.testing.synthetic_deribit import synthetic_trades_table

    with tempfile.TemporaryDirectory(prefix="mkt-bench-options-") as tmp:
        data_dir = Path(tmp) / "data"
        os.environ["MKT_DATA_DIR"] = str(data_dir)
        started = time.perf_counter()
        total = 0
        for i in range(args.days):
            day = args.first_day + timedelta(days=i)
            table = synthetic_trades_table(day, args.trades_per_day, seed=i)
            lake.write_parquet_atomic(
                table, lake.raw_partition_path("deribit", "option_trades", day.isoformat())
            )
            total += table.num_rows
        print(
            f"SYNTHETIC lake: {total:,} trades over {args.days} days written in "
            f"{time.perf_counter() - started:.1f}s"
        )
        seconds, summary = dbt_build(data_dir, Path(tmp) / "target", {})
        print(f"dbt build, all {args.days} days (3 marts + tests): {seconds:.1f}s  [{summary}]")
        from mkt_platform import warehouse

        with warehouse.connect(read_only=True) as con:
            counts = {
                name: con.execute(f"select count(*) from marts.{name}").fetchone()[0]
                for name in ("option_ohlc_hourly", "option_expiry_hourly", "option_atm_iv_hourly")
            }
        print("rows: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        day = args.first_day + timedelta(days=args.days // 2)
        window = {
            "options_hour_min": f"{day.isoformat()}T00:00:00+00:00",
            "options_hour_max": f"{(day + timedelta(days=1)).isoformat()}T00:00:00+00:00",
        }
        seconds, summary = dbt_build(data_dir, Path(tmp) / "target", window)
        print(f"dbt build, one UTC-day partition ({day}): {seconds:.1f}s  [{summary}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
