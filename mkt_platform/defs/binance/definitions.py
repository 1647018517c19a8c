"""Binance domain: raw spot klines (1h, 1m), the client resource, 1m gap repair."""

from __future__ import annotations

import dagster as dg

from mkt_platform import settings
from mkt_platform.defs.binance.assets import build_klines_asset
from mkt_platform.defs.binance.resources import BinanceSpotClient
from mkt_platform.defs.binance.schedules import build_gap_repair_schedule


def build_defs() -> dg.Definitions:
    klines_1h = build_klines_asset("1h")
    klines_1m = build_klines_asset("1m")
    return dg.Definitions(
        assets=[klines_1h, klines_1m],
        schedules=[build_gap_repair_schedule(klines_1m)],
        resources={"binance": BinanceSpotClient(base_url=settings.binance_base_url())},
    )
