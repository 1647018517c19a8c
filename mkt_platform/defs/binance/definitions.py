"""Binance domain: the client resource (the raw datasets are declared in ``datasets.py``)."""

from __future__ import annotations

import dagster as dg

from mkt_platform import settings
from mkt_platform.defs.binance.resources import BinanceSpotClient


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        resources={"binance": BinanceSpotClient(base_url=settings.binance_base_url())}
    )
