{{ config(materialized='ephemeral', tags=['equity_daily']) }}
-- One row per (ticker, article id): news on SPY with its sentiment, and the trading day it
-- belongs to (the lake partition: published from that day's New York midnight to the next
-- trading day's). Ephemeral: each run reads the lake files of its own window.
-- depends_on: {{ source('lake_polygon', 'polygon_news') }}
{% if lake_has_files('polygon', 'news') %}
select
    ticker,
    id as article_id,
    published_utc,
    title,
    publisher_name,
    sentiment,
    date as session_date
from {{ source('lake_polygon', 'polygon_news') }}
-- only the files of the run's window (all of them when no window is set)
where {{ lake_partition_filter('date') }}
{% else %}
select
    cast(null as varchar) as ticker,
    cast(null as varchar) as article_id,
    cast(null as timestamptz) as published_utc,
    cast(null as varchar) as title,
    cast(null as varchar) as publisher_name,
    cast(null as varchar) as sentiment,
    cast(null as date) as session_date
where false
{% endif %}
