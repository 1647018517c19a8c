{{ config(materialized='ephemeral', tags=['utc_daily']) }}
-- One row per (instrument, snapshot_time): snapshots of Hyperliquid's asset contexts.
-- depends_on: {{ source('lake_hyperliquid', 'hyperliquid_asset_contexts') }}
{% if lake_has_files('hyperliquid', 'asset_contexts') %}
select
    'hyperliquid' as source,
    coin as instrument,
    snapshot_time,
    open_interest,
    mark_px as mark_price,
    oracle_px as oracle_price,
    mid_px as mid_price,
    funding as funding_rate,
    premium,
    prev_day_px as prev_day_price,
    day_ntl_vlm as day_notional_volume,
    day_base_vlm as day_base_volume,
    impact_bid_px as impact_bid_price,
    impact_ask_px as impact_ask_price,
    date as partition_date
from {{ source('lake_hyperliquid', 'hyperliquid_asset_contexts') }}
-- only the files of the run's window (all of them when no window is set)
where {{ lake_partition_filter('date') }}
{% else %}
select
    'hyperliquid' as source,
    cast(null as varchar) as instrument,
    cast(null as timestamptz) as snapshot_time,
    cast(null as decimal(38, 12)) as open_interest,
    cast(null as decimal(38, 8)) as mark_price,
    cast(null as decimal(38, 8)) as oracle_price,
    cast(null as decimal(38, 8)) as mid_price,
    cast(null as decimal(38, 12)) as funding_rate,
    cast(null as decimal(38, 12)) as premium,
    cast(null as decimal(38, 8)) as prev_day_price,
    cast(null as decimal(38, 12)) as day_notional_volume,
    cast(null as decimal(38, 12)) as day_base_volume,
    cast(null as decimal(38, 8)) as impact_bid_price,
    cast(null as decimal(38, 8)) as impact_ask_price,
    cast(null as date) as partition_date
where false
{% endif %}
