"""The warehouse's upkeep: the job ``warehouse_maintenance`` and its daily schedule.

On a DuckLake warehouse (``MKT_WAREHOUSE=ducklake``) it flushes inlined rows, merges small
files, expires snapshots older than ``MKT_DUCKLAKE_RETENTION_DAYS`` and deletes the files
nothing needs any more (:func:`mkt_platform.warehouse.maintain`). It writes the warehouse, so
it takes the warehouse pool's slot like a dbt run. On the DuckDB file it has nothing to do
and says so.
"""

from datetime import timedelta

import dagster as dg

from mkt_platform import settings, warehouse
from mkt_platform.lib.dbt_assets import WAREHOUSE_POOL


@dg.op(
    pool=WAREHOUSE_POOL,
    out=dg.Out(dg.Nothing),
    description="Flush inlined rows, merge small files, expire old snapshots and delete the "
    "files nothing needs (DuckLake warehouse only).",
)
def maintain_warehouse(context: dg.OpExecutionContext) -> dg.Output:
    if warehouse.kind() != "ducklake":
        context.log.info(f"nothing to do: the warehouse is a DuckDB file ({warehouse.describe()})")
        return dg.Output(None)
    days = settings.ducklake_retention_days()
    if not warehouse.exists():
        context.log.info(f"nothing to do: no warehouse yet ({warehouse.describe()})")
        return dg.Output(None)
    figures = warehouse.maintain(timedelta(days=days))
    context.log.info(
        f"DuckLake upkeep ({warehouse.describe()}), history kept {days} days: snapshots "
        f"{figures['snapshots_before']} -> {figures['snapshots_after']}, data files "
        f"{figures['data_files_before']} -> {figures['data_files_after']}, bytes "
        f"{figures['data_bytes_before']} -> {figures['data_bytes_after']}, "
        f"{figures['rows_flushed']} inlined rows written out, "
        f"{figures['orphaned_files_deleted']} orphaned files deleted"
    )
    # The figures as the output's metadata: a table in the run's page of the UI.
    return dg.Output(None, metadata=figures)


@dg.job(description=maintain_warehouse.description)
def warehouse_maintenance() -> None:
    maintain_warehouse()


#: Daily, in the quiet of the hour before the 08:00 UTC session close.
warehouse_maintenance_schedule = dg.ScheduleDefinition(
    job=warehouse_maintenance,
    cron_schedule="30 6 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="The warehouse's daily upkeep (DuckLake: snapshots kept "
    "MKT_DUCKLAKE_RETENTION_DAYS days); nothing on the DuckDB file.",
)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(jobs=[warehouse_maintenance], schedules=[warehouse_maintenance_schedule])
