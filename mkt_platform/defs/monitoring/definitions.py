"""Monitoring: freshness checks and sensor, late-data re-materialization, schema drift, and
runs whose process died.

The raw assets carry their own data-quality checks (``mkt_platform.lib.raw.QUALITY_CHECKS``)
and record what the sensors here read: content hashes, newest record times, added fields,
column schemas, and quarantined payloads.
"""

import dagster as dg

from mkt_platform.defs.monitoring.drift import column_schema_change_checks, schema_drift_sensor
from mkt_platform.defs.monitoring.freshness import freshness_checks, freshness_sensor
from mkt_platform.defs.monitoring.late_data import late_data_sensor
from mkt_platform.defs.monitoring.runs import orphaned_run_sensor


def build_defs() -> dg.Definitions:
    return dg.Definitions(
        asset_checks=[freshness_checks, *column_schema_change_checks()],
        sensors=[freshness_sensor, late_data_sensor, schema_drift_sensor, orphaned_run_sensor],
    )
