"""UTC-daily dbt marts: hourly options OHLC and aggregates (Deribit), funding per day.

One ``@dbt_assets`` for the models tagged ``options_hourly`` or ``utc_daily`` and the staging
views they read, partitioned by UTC day like the raw assets they read (identity mapping),
with single-run backfills, in the ``duckdb_warehouse`` pool shared by every dbt run.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from mkt_platform.defs.sessions.assets import WAREHOUSE_POOL
from mkt_platform.lib.dbt import MktDbtTranslator, dbt_project, stream_dbt_build
from mkt_platform.lib.partitions import raw_daily_partitions_def

SELECT = "+tag:options_hourly +tag:utc_daily"


def build_utc_daily_dbt_assets() -> dg.AssetsDefinition:
    """The dbt assets partitioned by UTC day: options marts (hourly rows) and funding."""
    project = dbt_project()

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        select=SELECT,
        exclude="+tag:session_daily",
        name="utc_daily_dbt",
        partitions_def=raw_daily_partitions_def(),
        backfill_policy=dg.BackfillPolicy.single_run(),
        dagster_dbt_translator=MktDbtTranslator(),
        pool=WAREHOUSE_POOL,
    )
    def _utc_daily_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
        yield from stream_dbt_build(context, dbt, "utc_hour", "UTC day")

    return _utc_daily_dbt
