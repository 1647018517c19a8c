"""Another process holds the DuckDB warehouse (issue 12, fault 7).

A notebook or ``duckdb -readonly`` left open on the warehouse made every dbt run fail at once
("Conflicting lock is held"), and with a read-write holder the CLI's own summary crashed with
a traceback. Now a dbt step waits, saying who holds the warehouse, for a bounded time, then
fails naming the holder; the summary says the warehouse cannot be read.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest

from tests.conftest import materialize_days, read_sessions
from tests.test_faults_runs import run_cli

HOLD = (
    "import duckdb, sys, time\n"
    "con = duckdb.connect(sys.argv[1], read_only=True)\n"
    "print('holding', flush=True)\n"
    "time.sleep(float(sys.argv[2]))\n"
)


def hold(warehouse: Path, seconds: float) -> subprocess.Popen:
    """A reader that keeps the warehouse open read-only, as a notebook would."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(warehouse), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "holding"
    return proc


@pytest.mark.slow
def test_dbt_waits_for_a_reader_then_builds_and_gives_up_naming_it(data_dir, instance, monkeypatch):
    data_dir.mkdir(parents=True)
    warehouse = data_dir / "warehouse.duckdb"
    duckdb.connect(str(warehouse)).close()

    reader = hold(warehouse, 120)
    try:
        monkeypatch.setenv("MKT_WAREHOUSE_LOCK_WAIT_SECONDS", "2")
        started = time.monotonic()
        results = materialize_days(date(2023, 1, 2), date(2023, 1, 2), instance)
        assert results[0].success, "the raw pulls never open the warehouse"
        failed = {name: why for r in results for name, why in r.failed.items()}
        assert failed, results
        why = next(iter(failed.values()))
        assert f"the warehouse {warehouse} is held by another process, PID {reader.pid}" in why
        assert "MKT_WAREHOUSE_LOCK_WAIT_SECONDS" in why
        assert time.monotonic() - started < 120
    finally:
        reader.kill()
        reader.wait()

    # The raw pulls first, then a reader before the dbt steps, which goes away a second after
    # the first dbt step starts waiting for it (however slow the machine is to get there).
    from mkt_platform.definitions import build_definitions
    from mkt_platform.lib import dbt as dbt_lib
    from mkt_platform.lib.materialize import plan, run_plan

    monkeypatch.setenv("MKT_WAREHOUSE_LOCK_WAIT_SECONDS", "60")
    defs = build_definitions()
    steps = plan(defs, date(2023, 1, 2), date(2023, 1, 2))
    assert steps[0].label == "raw pulls" and len(steps) > 1
    results = run_plan(defs, steps[:1], instance, progress=lambda _: None)
    reader = hold(warehouse, 120)
    waits = dbt_lib.wait_for_warehouse

    def reader_leaves_while_dbt_waits(*args, **kwargs):
        threading.Timer(1.0, reader.kill).start()
        return waits(*args, **kwargs)

    monkeypatch.setattr(dbt_lib, "wait_for_warehouse", reader_leaves_while_dbt_waits)
    try:
        results += run_plan(defs, steps[1:], instance, progress=lambda _: None)
    finally:
        reader.kill()
        reader.wait()
    assert all(r.success for r in results), [(r.step.label, r.failed) for r in results]
    said = [e.message for r in results for e in instance.all_logs(r.run_id)]
    assert any(f"is held by PID {reader.pid}" in m and "waiting" in m for m in said)
    assert {s["instrument"] for s in read_sessions(data_dir) if s["source"] == "binance"} == {
        "BTCUSDT", "ETHUSDT", "SOLUSDT"
    }  # fmt: skip


@pytest.mark.slow
def test_the_cli_with_a_writer_holding_the_warehouse_fails_clearly(tmp_path):
    """A read-write holder (another writer): the CLI's dbt steps give up naming it, the
    summary says the warehouse cannot be read, the exit code is 1 and nothing is a traceback."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD.replace(", read_only=True", ""),
         str(data_dir / "warehouse.duckdb"), "300"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert writer.stdout.readline().strip() == "holding"
        done = run_cli(data_dir, timeout=600, MKT_WAREHOUSE_LOCK_WAIT_SECONDS="2")
    finally:
        writer.kill()
        writer.wait()
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"held by another process, PID {writer.pid}" in done.stderr
    assert "FAILED: session_ohlc_daily" in done.stderr or "FAILED: " in done.stderr
    assert "(no summary: the warehouse cannot be read now" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
