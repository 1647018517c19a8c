"""Deribit domain: raw BTC option trades and the client resource."""

from __future__ import annotations

import dagster as dg

from mkt_platform import settings
from mkt_platform.defs.deribit.assets import deribit_option_trades
from mkt_platform.defs.deribit.resources import DeribitClient


def build_defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[deribit_option_trades],
        resources={
            "deribit": DeribitClient(
                base_url=settings.deribit_base_url(),
                history_base_url=settings.deribit_history_base_url(),
            )
        },
    )
