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
        binance.build_defs(),
        hyperliquid.build_defs(),
        deribit.build_defs(),
        sessions.build_defs(),
        options.build_defs(),
        automation.build_defs(),
        monitoring.build_defs(),
    )


defs = build_definitions()
