"""Session marts built by dbt: daily options sessions (anchor hour to anchor hour, UTC).

One ``@dbt_assets`` per partitions definition (see STYLE.md): this one holds the dbt models
tagged ``session_daily`` and the staging and intermediate views they read, partitioned like
the daily session, with single-run backfills. All dbt runs share the ``duckdb_warehouse``
pool (limit 1), since DuckDB allows one writer.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from mkt_platform.lib.dbt import MktDbtTranslator, dbt_project, stream_dbt_build
from mkt_platform.lib.partitions import (
    session_daily_partitions_def,
    session_monthly_partitions_def,
    session_weekly_partitions_def,
)

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
        yield from stream_dbt_build(context, dbt, "session", "session")

    return _session_daily_dbt


def build_session_weekly_dbt_assets() -> dg.AssetsDefinition:
    """The weekly session mart, partitioned by weekly session (session weekday at the anchor
    hour, Friday 08:00 UTC by default, to the next); it reads the daily sessions through the
    time-window mapping, so a weekly partition depends on exactly its seven daily sessions."""
    project = dbt_project()

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        select="tag:session_weekly",
        name="session_weekly_dbt",
        partitions_def=session_weekly_partitions_def(),
        backfill_policy=dg.BackfillPolicy.single_run(),
        dagster_dbt_translator=MktDbtTranslator(),
        pool=WAREHOUSE_POOL,
    )
    def _session_weekly_dbt(
        context: dg.AssetExecutionContext, dbt: DbtCliResource
    ) -> Iterator[Any]:
        yield from stream_dbt_build(context, dbt, "session", "weekly session")

    return _session_weekly_dbt


def build_session_monthly_dbt_assets() -> dg.AssetsDefinition:
    """The monthly session mart, partitioned by monthly session (last Friday 08:00 UTC of a
    month to the last Friday of the next, by default); a partition depends on exactly its 28
    or 35 daily sessions through the time-window mapping."""
    project = dbt_project()

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        select="tag:session_monthly",
        name="session_monthly_dbt",
        partitions_def=session_monthly_partitions_def(),
        backfill_policy=dg.BackfillPolicy.single_run(),
        dagster_dbt_translator=MktDbtTranslator(),
        pool=WAREHOUSE_POOL,
    )
    def _session_monthly_dbt(
        context: dg.AssetExecutionContext, dbt: DbtCliResource
    ) -> Iterator[Any]:
        yield from stream_dbt_build(context, dbt, "session", "monthly session")

    return _session_monthly_dbt
