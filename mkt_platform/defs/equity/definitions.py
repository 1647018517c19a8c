"""The dbt marts of the US equity datasets, partitioned by NYSE trading day.

One ``@dbt_assets`` for the models tagged ``equity_daily`` (and the calendar seed they read),
partitioned like the raw equity assets (identity mapping), single-run backfills, in the
warehouse pool. A run's window is its trading days' time window (New York midnight to the
next trading day's), passed as the hour window the marts filter on.
"""

import dagster as dg

from mkt_platform.lib.dbt_assets import build_dbt_assets
from mkt_platform.lib.equity_calendar import trading_days_partitions_def

#: The dbt tag of the equity models (and of the calendar seed they read).
TAG = "equity_daily"
SELECT = f"+tag:{TAG}"


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[
            build_dbt_assets(
                "equity_daily_dbt",
                SELECT,
                trading_days_partitions_def(),
                "utc_hour",
                "trading day",
            )
        ]
    )
