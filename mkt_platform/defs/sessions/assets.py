"""Session marts built by dbt: daily options sessions (anchor hour to anchor hour, UTC).

One ``@dbt_assets`` per partitions definition (see STYLE.md): this one holds the dbt models
tagged ``session_daily`` and the staging and intermediate views they read, partitioned like
the daily session, with single-run backfills. All dbt runs share the ``duckdb_warehouse``
pool (limit 1), since DuckDB allows one writer.
"""

import os
from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from mkt_platform import settings
from mkt_platform.lib.dbt import MktDbtTranslator, dbt_build_args, dbt_project
from mkt_platform.lib.partitions import session_daily_partitions_def

WAREHOUSE_POOL = "duckdb_warehouse"


def build_session_daily_dbt_assets() -> dg.AssetsDefinition:
    """The dbt assets of the daily session, partitioned by session (anchor hour to anchor)."""
    project = dbt_project()

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        select="+tag:session_daily,resource_type:model +tag:session_daily",
        name="session_daily_dbt",
        partitions_def=session_daily_partitions_def(),
        backfill_policy=dg.BackfillPolicy.single_run(),
        dagster_dbt_translator=MktDbtTranslator(),
        pool=WAREHOUSE_POOL,
    )
    def _session_daily_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
        # dbt runs in its own process with the project folder as working directory: give it
        # the data directory as an absolute path so both read and write the same lake.
        os.environ["MKT_DATA_DIR"] = str(settings.data_dir())
        # DuckDB creates the warehouse file but not its folder.
        settings.data_dir().mkdir(parents=True, exist_ok=True)
        window = context.partition_time_window
        context.log.info(
            f"dbt build for {len(context.partition_keys)} session(s) "
            f"{window.start:%Y-%m-%d %H:%M} to {window.end:%Y-%m-%d %H:%M} UTC"
        )
        yield from dbt.cli(dbt_build_args(window), context=context).stream()

    return _session_daily_dbt
