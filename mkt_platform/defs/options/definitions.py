"""UTC-daily marts domain (options, funding); the dbt resource comes from the sessions domain."""

from __future__ import annotations

import dagster as dg

from mkt_platform.defs.options.assets import build_utc_daily_dbt_assets


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[build_utc_daily_dbt_assets()])
