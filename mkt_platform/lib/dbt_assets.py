"""The factory of the platform's ``@dbt_assets`` definitions.

Kept apart from ``lib/dbt.py`` because Dagster reads the decorated function's annotations at
definition time, which postponed annotations (``from __future__ import annotations``) break.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from mkt_platform.lib.dbt import MktDbtTranslator, dbt_project, stream_dbt_build

#: Every dbt run writes the one DuckDB warehouse, which allows a single writer: one pool,
#: limited to 1 in every dagster.yaml.
WAREHOUSE_POOL = "duckdb_warehouse"


def build_dbt_assets(
    name: str,
    select: str,
    partitions_def: dg.PartitionsDefinition,
    window: str,
    unit: str,
    exclude: str | None = None,
) -> dg.AssetsDefinition:
    """One ``@dbt_assets`` per partitions definition (STYLE.md): the models ``select`` picks,
    partitioned by ``partitions_def``, single-run backfills, in the warehouse pool, each run a
    ``dbt build`` over the run's window (see :func:`stream_dbt_build` for ``window``/``unit``).
    """
    project = dbt_project()

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        select=select,
        exclude=exclude,
        name=name,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        dagster_dbt_translator=MktDbtTranslator(),
        pool=WAREHOUSE_POOL,
    )
    def _dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
        yield from stream_dbt_build(context, dbt, window, unit)

    return _dbt
