{{ config(materialized='ephemeral', tags=['equity_daily']) }}
-- One row per (ticker, bar_time) of the tracked SPY options' minute bars (premiums in USD per
-- share, volume in contracts). Ephemeral: each run reads the lake files of its own window.
-- depends_on: {{ source('lake_polygon', 'polygon_spy_options_aggs_1m') }}
{% if lake_has_files('polygon', 'spy_options_aggs_1m') %}
select
    'polygon' as source,
    ticker,
    bar_time,
    open,
    high,
    low,
    close,
    volume,
    vwap,
    transactions,
    date as partition_date
from {{ source('lake_polygon', 'polygon_spy_options_aggs_1m') }}
-- only the files of the run's window (all of them when no window is set)
where {{ lake_partition_filter('date') }}
{% else %}
{{ empty_polygon_aggs() }}
{% endif %}
