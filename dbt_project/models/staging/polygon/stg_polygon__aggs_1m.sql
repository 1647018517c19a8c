{{ config(materialized='ephemeral', tags=['equity_daily']) }}
-- One row per (ticker, bar_time) of Polygon's minute bars, extended hours included.
-- Ephemeral: compiled into the marts, so each run reads the lake files of its own window.
-- depends_on: {{ source('lake_polygon', 'polygon_spy_aggs_1m') }}
{% if lake_has_files('polygon', 'spy_aggs_1m') %}
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
from {{ source('lake_polygon', 'polygon_spy_aggs_1m') }}
-- only the files of the run's window (all of them when no window is set)
where {{ lake_partition_filter('date') }}
{% else %}
{{ empty_polygon_aggs() }}
{% endif %}
