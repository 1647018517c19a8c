{{ config(materialized='ephemeral', tags=['utc_daily']) }}
-- One row per (instrument, snapshot_time, side, level): the Binance spot order-book
-- snapshots, renamed to the platform's terms (a snapshot is appended to its day's file, so
-- duplicates can only come from overlapping files; the newest file wins). A partition run
-- reads only the lake files of its window (lake_partition_filter).
-- With no lake file yet (no book ever snapshotted) this is an empty relation of the same
-- columns and types.
-- depends_on: {{ source('lake_binance', 'binance_order_book') }}
{% if lake_has_files('binance', 'order_book') %}
select
    'binance' as source,
    symbol as instrument,
    snapshot_time,
    last_update_id,
    side,
    level,
    price,
    quantity,
    date as partition_date
from {{ source('lake_binance', 'binance_order_book') }}
-- only the files of the run's window (all of them when no window is set)
where {{ lake_partition_filter('date') }}
qualify row_number() over (
    partition by symbol, snapshot_time, side, level order by date desc
) = 1
{% else %}
select
    'binance' as source,
    cast(null as varchar) as instrument,
    cast(null as timestamptz) as snapshot_time,
    cast(null as bigint) as last_update_id,
    cast(null as varchar) as side,
    cast(null as integer) as level,
    cast(null as decimal(38, 8)) as price,
    cast(null as decimal(38, 8)) as quantity,
    cast(null as date) as partition_date
where false
{% endif %}
