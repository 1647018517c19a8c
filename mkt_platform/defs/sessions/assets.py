"""Session marts built by dbt: daily, weekly and monthly options sessions.

One ``@dbt_assets`` per partitions definition (see STYLE.md), each with single-run backfills
in the ``duckdb_warehouse`` pool (DuckDB allows one writer):

- daily: the models tagged ``session_daily`` and ``int_candles_1h``, the table they read (the
  staging models are ephemeral, compiled into it, so each run reads its own window),
  partitioned by daily session (anchor hour to anchor hour, UTC);
- weekly: ``session_ohlc_weekly``, partitioned by weekly session (the session weekday at the
  anchor hour, Friday 08:00 UTC by default, to the next); a partition depends on exactly its
  seven daily sessions through the time-window mapping;
- monthly: ``session_ohlc_monthly``, partitioned by monthly session (last Friday of a month to
  the last Friday of the next, by default); a partition depends on its 28 or 35 daily sessions.
"""

import dagster as dg

from mkt_platform.lib.dbt_assets import build_dbt_assets
from mkt_platform.lib.partitions import (
    session_daily_partitions_def,
    session_monthly_partitions_def,
    session_weekly_partitions_def,
)


def build_session_daily_dbt_assets() -> dg.AssetsDefinition:
    """The dbt assets of the daily session, partitioned by session (anchor hour to anchor)."""
    return build_dbt_assets(
        "session_daily_dbt",
        "+tag:session_daily,resource_type:model +tag:session_daily",
        session_daily_partitions_def(),
        "session",
        "session",
    )


def build_session_weekly_dbt_assets() -> dg.AssetsDefinition:
    """The weekly session mart, partitioned by weekly session."""
    return build_dbt_assets(
        "session_weekly_dbt",
        "tag:session_weekly",
        session_weekly_partitions_def(),
        "session",
        "weekly session",
    )


def build_session_monthly_dbt_assets() -> dg.AssetsDefinition:
    """The monthly session mart, partitioned by monthly session."""
    return build_dbt_assets(
        "session_monthly_dbt",
        "tag:session_monthly",
        session_monthly_partitions_def(),
        "session",
        "monthly session",
    )
