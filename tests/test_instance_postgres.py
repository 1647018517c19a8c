"""The deployment's dagster.yaml on the real PostgreSQL at 127.0.0.1:5432 (no mock).

A fresh database per test run; a partition materialized through an instance built from
deploy/dagster.yaml must leave its run and materialization in PostgreSQL.
"""

from __future__ import annotations

import shutil

import dagster as dg
import psycopg2
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from mkt_platform.defs.binance.datasets import KLINES_1H
from mkt_platform.defs.binance.resources import BinanceSpotClient
from mkt_platform.lib.materialize import log_messages
from tests.conftest import PG, REPO


def test_deployment_instance_stores_runs_in_postgres(postgres_db, data_dir, replay, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        result = dg.materialize(
            [KLINES_1H.asset()],
            resources={"binance": BinanceSpotClient(base_url=replay.base_url("binance"))},
            instance=instance,
            tags={
                ASSET_PARTITION_RANGE_START_TAG: "2023-01-05",
                ASSET_PARTITION_RANGE_END_TAG: "2023-01-06",
            },
        )
        assert result.success
        materialized = instance.get_materialized_partitions(dg.AssetKey("binance_klines_1h"))
        assert materialized == {"2023-01-05", "2023-01-06"}
        # The CLI reads a run's logged messages alone (not its events) from PostgreSQL too.
        logged = [e.user_message for e in log_messages(instance, result.run_id)]
        expected = [
            e.user_message for e in instance.all_logs(result.run_id) if not e.is_dagster_event
        ]
        assert logged == expected and any("2023-01-05" in m for m in logged), logged

    with psycopg2.connect(**{**PG, "dbname": postgres_db}) as con, con.cursor() as cur:
        cur.execute("select run_id, status from runs")
        assert cur.fetchall() == [(result.run_id, "SUCCESS")]
