"""UTC-daily dbt marts: hourly options OHLC and aggregates (Deribit), funding per day.

One ``@dbt_assets`` for the models tagged ``options_hourly`` or ``utc_daily`` and the staging
table of the option trades they read (the other staging models are ephemeral), partitioned
by UTC day like the raw assets they read (identity mapping), with single-run backfills, in
the ``duckdb_warehouse`` pool shared by every dbt run.
"""

import dagster as dg

from mkt_platform.lib.dbt_assets import build_dbt_assets
from mkt_platform.lib.partitions import raw_daily_partitions_def

SELECT = "+tag:options_hourly +tag:utc_daily"


def build_utc_daily_dbt_assets() -> dg.AssetsDefinition:
    """The dbt assets partitioned by UTC day: options marts (hourly rows) and funding."""
    return build_dbt_assets(
        "utc_daily_dbt",
        SELECT,
        raw_daily_partitions_def(),
        "utc_hour",
        "UTC day",
        exclude="+tag:session_daily",
    )
