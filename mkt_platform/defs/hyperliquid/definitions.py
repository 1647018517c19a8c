"""Hyperliquid domain: the client resource (the raw datasets are declared in ``datasets.py``)."""

from __future__ import annotations

import dagster as dg

from mkt_platform import settings
from mkt_platform.defs.hyperliquid.resources import HyperliquidClient


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        resources={"hyperliquid": HyperliquidClient(base_url=settings.hyperliquid_base_url())}
    )
