"""The deployment's dagster.yaml on the real PostgreSQL at 127.0.0.1:5432 (no mock).

A fresh database per test run; a partition materialized through an instance built from
deploy/dagster.yaml must leave its run and materialization in PostgreSQL.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import dagster as dg
import psycopg2
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from mkt_platform.defs.binance.assets import build_klines_asset
from mkt_platform.defs.binance.resources import BinanceSpotClient

REPO = Path(__file__).resolve().parents[1]
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres"}


@pytest.fixture
def postgres_db(monkeypatch):
    name = f"mkt_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(**PG)
    admin.autocommit = True
    admin.cursor().execute(f'create database "{name}"')
    for key, value in {
        "DAGSTER_POSTGRES_HOST": PG["host"],
        "DAGSTER_POSTGRES_PORT": str(PG["port"]),
        "DAGSTER_POSTGRES_USER": PG["user"],
        "DAGSTER_POSTGRES_PASSWORD": "unused-with-trust-auth",
        "DAGSTER_POSTGRES_DB": name,
    }.items():
        monkeypatch.setenv(key, value)
    yield name
    admin.cursor().execute(f'drop database "{name}" with (force)')
    admin.close()


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
            [build_klines_asset("1h")],
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

    with psycopg2.connect(**{**PG, "dbname": postgres_db}) as con, con.cursor() as cur:
        cur.execute("select run_id, status from runs")
        assert cur.fetchall() == [(result.run_id, "SUCCESS")]
