{{ config(materialized='ephemeral', tags=['equity_daily']) }}
-- One row per (ticker, bar_time) of Polygon's minute bars of SPY and VIX (I:VIX), extended
-- hours included. Ephemeral: compiled into the marts, so each run reads the lake files of its
-- own window. A dataset with no file yet adds no row.
-- depends_on: {{ source('lake_polygon', 'polygon_spy_aggs_1m') }}
-- depends_on: {{ source('lake_polygon', 'polygon_vix_aggs_1m') }}
{%- set datasets = [] %}
{%- for dataset in ['spy_aggs_1m', 'vix_aggs_1m'] %}
{%- if lake_has_files('polygon', dataset) %}{% do datasets.append(dataset) %}{% endif %}
{%- endfor %}
{%- for dataset in datasets %}
select
    'polygon' as source,
    ticker,
    bar_time,
    open,
    high,
    low,
    close,
    volume::decimal(38, 8) as volume,
    vwap::decimal(38, 8) as vwap,
    transactions::bigint as transactions,
    date as partition_date
from {{ source('lake_polygon', 'polygon_' ~ dataset) }}
-- only the files of the run's window (all of them when no window is set)
where {{ lake_partition_filter('date') }}
{% if not loop.last %}union all{% endif %}
{%- endfor %}
{%- if not datasets %}
{{ empty_polygon_aggs() }}
{%- endif %}
