"""Root Dagster definitions: every domain under ``mkt_platform/defs`` merged in one place.

Definitions are built by :func:`build_definitions` from the current environment (see
``mkt_platform/settings.py``), so a test or the CLI can change a setting and rebuild. The raw
assets come from the registry of raw datasets (:func:`mkt_platform.defs.registry.raw_datasets`),
and so do the monitors and refresh schedules over them.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from mkt_platform.defs.automation import definitions as automation
from mkt_platform.defs.binance import definitions as binance
from mkt_platform.defs.deribit import definitions as deribit
from mkt_platform.defs.hyperliquid import definitions as hyperliquid
from mkt_platform.defs.monitoring import definitions as monitoring
from mkt_platform.defs.options import definitions as options
from mkt_platform.defs.registry import raw_datasets
from mkt_platform.defs.sessions import definitions as sessions
from mkt_platform.lib.datasets import RawDataset


def build_definitions(datasets: Sequence[RawDataset] | None = None) -> dg.Definitions:
    """Every definition of the platform, over ``datasets`` (default: the registry's)."""
    datasets = raw_datasets() if datasets is None else tuple(datasets)
    return dg.Definitions.merge(
        # Runs execute in one process: every run is one asset (or one dbt invocation) and
        # its checks, so a process per step would only add start-up time (about 10 s a
        # step); runs go in parallel with each other instead, up to the run queue's limit.
        dg.Definitions(executor=dg.in_process_executor),
        *(dataset.definitions() for dataset in datasets),
        binance.build_defs(),
        hyperliquid.build_defs(),
        deribit.build_defs(),
        sessions.build_defs(),
        options.build_defs(),
        automation.build_defs(datasets),
        monitoring.build_defs(datasets),
    )


defs = build_definitions()
