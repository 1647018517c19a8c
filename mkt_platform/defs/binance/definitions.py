"""Binance domain: raw spot klines and the client resource."""

from __future__ import annotations

import dagster as dg

from mkt_platform import settings
from mkt_platform.defs.binance.assets import build_klines_asset
from mkt_platform.defs.binance.resources import BinanceSpotClient


def build_defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[build_klines_asset("1h")],
        resources={"binance": BinanceSpotClient(base_url=settings.binance_base_url())},
    )
