"""Root Dagster definitions: every domain under ``mkt_platform/defs`` merged in one place.

Definitions are built by :func:`build_definitions` from the current environment (see
``mkt_platform/settings.py``), so a test or the CLI can change a setting and rebuild.
"""

from __future__ import annotations

import dagster as dg

from mkt_platform.defs.automation import definitions as automation
from mkt_platform.defs.binance import definitions as binance
from mkt_platform.defs.deribit import definitions as deribit
from mkt_platform.defs.hyperliquid import definitions as hyperliquid
from mkt_platform.defs.monitoring import definitions as monitoring
from mkt_platform.defs.options import definitions as options
from mkt_platform.defs.sessions import definitions as sessions


def build_definitions() -> dg.Definitions:
    return dg.Definitions.merge(
        # Runs execute in one process: every run is one asset (or one dbt invocation) and
        # its checks, so a process per step would only add start-up time (about 10 s a
        # step); runs go in parallel with each other instead, up to the run queue's limit.
        dg.Definitions(executor=dg.in_process_executor),
        binance.build_defs(),
        hyperliquid.build_defs(),
        deribit.build_defs(),
        sessions.build_defs(),
        options.build_defs(),
        automation.build_defs(),
        monitoring.build_defs(),
    )


defs = build_definitions()
