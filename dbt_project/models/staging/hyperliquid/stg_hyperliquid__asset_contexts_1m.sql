{{ config(materialized='ephemeral', tags=['utc_daily', 'capture']) }}
-- One row per (instrument, minute) of the asset contexts the capture service wrote for its
-- closed hours (already the latest of each minute). A partition run reads only the lake
-- files of its window. With no closed hour yet this is an empty relation.
-- depends_on: {{ source('lake_hyperliquid', 'hyperliquid_asset_contexts_1m_stream') }}
{% if lake_has_files('hyperliquid', 'asset_contexts_1m_stream', 'date=*/hour=*/part.parquet') %}
select
    'hyperliquid' as source,
    coin as instrument,
    minute,
    funding as funding_rate,
    open_interest,
    oracle_price,
    mark_price,
    mid_price,
    premium,
    date as partition_date
from {{ source('lake_hyperliquid', 'hyperliquid_asset_contexts_1m_stream') }}
-- only the files of the run's window (all of them when no window is set)
where {{ lake_partition_filter('date') }}
{% else %}
select
    'hyperliquid' as source,
    cast(null as varchar) as instrument,
    cast(null as timestamptz) as minute,
    cast(null as decimal(38, 12)) as funding_rate,
    cast(null as decimal(38, 12)) as open_interest,
    cast(null as decimal(38, 8)) as oracle_price,
    cast(null as decimal(38, 8)) as mark_price,
    cast(null as decimal(38, 8)) as mid_price,
    cast(null as decimal(38, 12)) as premium,
    cast(null as date) as partition_date
where false
{% endif %}
