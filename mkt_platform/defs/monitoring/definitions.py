"""Monitoring: freshness checks and sensor, late-data re-materialization, schema drift, and
runs whose process died, over every raw dataset of the registry and the marts.

The raw assets carry their own data-quality checks (``mkt_platform.lib.raw.QUALITY_CHECKS``)
and record what the sensors here read: content hashes, newest record times, added fields,
column schemas, and quarantined payloads.
"""

from collections.abc import Sequence

import dagster as dg

from mkt_platform.defs.monitoring.drift import (
    build_schema_drift_sensor,
    column_schema_change_checks,
)
from mkt_platform.defs.monitoring.freshness import (
    build_freshness_checks,
    build_freshness_sensor,
    freshness_rules,
)
from mkt_platform.defs.monitoring.late_data import build_late_data_sensor
from mkt_platform.defs.registry import raw_datasets
from mkt_platform.lib.alerts import AlertWebhook
from mkt_platform.lib.datasets import RawDataset


@dg.definitions
def defs() -> dg.Definitions:
    """Over every raw dataset of the registry (``orphaned_run_sensor`` of ``runs.py``, which
    needs no dataset, is collected from its module by the folder loader)."""
    return build_defs(raw_datasets())


def build_defs(datasets: Sequence[RawDataset]) -> dg.Definitions:
    rules = freshness_rules(datasets)
    raw_keys = [d.key for d in datasets]
    schema_checks = column_schema_change_checks(raw_keys)
    return dg.Definitions(
        # The alert receiver of the freshness and drift sensors (MKT_ALERT_WEBHOOK_URL, an
        # EnvVar: its value, a secret, never shows in the UI).
        resources={"alert_webhook": AlertWebhook.from_env()},
        asset_checks=[build_freshness_checks(rules), *schema_checks],
        sensors=[
            build_freshness_sensor(rules),
            build_late_data_sensor(datasets),
            build_schema_drift_sensor(raw_keys, schema_checks),
        ],
    )
