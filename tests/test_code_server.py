"""The code server's run workers (mkt_platform/code_server.py): forked from a forkserver that
imported the platform. The deployment test (tests/test_deployment.py) runs the server itself,
sees its runs' processes forked from the forkserver, and kills the forkserver."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from mkt_platform.code_server import PRELOAD


def test_the_preload_starts_no_thread_and_reads_no_setting(tmp_path):
    """What the forkserver imports before forking runs is safe to fork (one thread, no
    connection) and independent of the settings (each run reads them): imported with settings
    that would make any reader fail, it succeeds and leaves one thread; and it holds the
    modules a run needs (Dagster, dbt's runner and adapter, the code location's modules)."""
    env = {
        **os.environ,
        "MKT_WAREHOUSE": "not-a-warehouse",
        "MKT_DATA_DIR": str(tmp_path / "missing" / "data"),
        "MKT_INSTRUMENTS_FILE": str(tmp_path / "missing.yaml"),
        "DAGSTER_HOME": str(tmp_path / "missing_home"),
    }
    script = (
        "import json, sys, threading\n"
        f"for name in {list(PRELOAD)!r}: __import__(name)\n"
        "print(json.dumps({'threads': threading.active_count(), 'modules': sorted(sys.modules)}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded["threads"] == 1
    modules = set(loaded["modules"])
    for needed in (
        "dagster",
        "dagster_dbt",
        "dbt.cli.main",
        "dbt.adapters.duckdb.impl",
        "mkt_platform.definitions",
        "mkt_platform.defs.registry",
        "mkt_platform.defs.binance.datasets",
        "mkt_platform.lib.dbt_in_process",
    ):
        assert needed in modules, needed
    assert not (tmp_path / "missing").exists() and not (tmp_path / "missing_home").exists()
