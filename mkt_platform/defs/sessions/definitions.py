"""Sessions domain: the dbt session marts and the dbt resource."""

from __future__ import annotations

import dagster as dg

from mkt_platform.defs.sessions.assets import (
    build_session_daily_dbt_assets,
    build_session_monthly_dbt_assets,
    build_session_weekly_dbt_assets,
)
from mkt_platform.lib.dbt import dbt_resource


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[
            build_session_daily_dbt_assets(),
            build_session_weekly_dbt_assets(),
            build_session_monthly_dbt_assets(),
        ],
        resources={"dbt": dbt_resource()},
    )
