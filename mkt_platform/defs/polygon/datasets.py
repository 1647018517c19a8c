"""Polygon's raw datasets: SPY's minute bars on the NYSE trading calendar.

Each is declared once here; the asset and its checks derive from the declaration (see
:mod:`mkt_platform.lib.datasets`).
"""

from mkt_platform.defs.polygon.assets import AGGS_COLUMNS, pull_spy_aggs_1m
from mkt_platform.defs.polygon.contract import AGGS_LAKE_SCHEMA
from mkt_platform.lib.datasets import RawDataset
from mkt_platform.lib.equity_calendar import trading_days_partitions_def

SPY_AGGS_1M = RawDataset(
    venue="polygon",
    dataset="spy_aggs_1m",
    description=(
        "SPY's one-minute bars from Polygon (GET /v2/aggs/ticker/SPY/range/1/minute/{day}/"
        "{day}, adjusted, next_url paging), one Parquet file per NYSE trading day, extended "
        "hours included (04:00-20:00 New York time): prices in USD and volume in shares as "
        "DECIMAL(38,8), exactly as sent, bar times in UTC. Partitioned by the NYSE trading "
        "days (exchange_calendars XNYS: no weekend or holiday partition). Needs "
        "POLYGON_API_KEY."
    ),
    resource="polygon",
    compute=pull_spy_aggs_1m,
    schema=AGGS_LAKE_SCHEMA,
    columns=AGGS_COLUMNS,
    quality="equity_bars",
    partitions=trading_days_partitions_def,
)

DATASETS = (SPY_AGGS_1M,)
