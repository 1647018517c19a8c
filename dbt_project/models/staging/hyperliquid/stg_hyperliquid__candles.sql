{{ config(materialized='ephemeral') }}
-- One row per (instrument, interval, open_time): Hyperliquid candles in the platform's terms.
-- quote_volume is not sent by Hyperliquid (only base volume), so it is NULL, never derived.
-- Ephemeral: compiled into int_candles_1h, so each run reads only the lake files of its own
-- window (lake_partition_filter); int_candles_1h holds the history.
-- depends_on: {{ source('lake_hyperliquid', 'hyperliquid_candles_1h') }}
{% if lake_has_files('hyperliquid', 'candles_1h') %}
select
    'hyperliquid' as source,
    coin as instrument,
    interval,
    open_time,
    close_time,
    open,
    high,
    low,
    close,
    volume,
    cast(null as decimal(38, 8)) as quote_volume,
    trades,
    date as partition_date
from {{ source('lake_hyperliquid', 'hyperliquid_candles_1h') }}
-- only the files of the run's window (all of them when no window is set)
where {{ lake_partition_filter('date') }}
qualify row_number() over (
    partition by coin, interval, open_time order by date desc
) = 1
{% else %}
select
    'hyperliquid' as source,
    cast(null as varchar) as instrument,
    cast(null as varchar) as interval,
    cast(null as timestamptz) as open_time,
    cast(null as timestamptz) as close_time,
    cast(null as decimal(38, 8)) as open,
    cast(null as decimal(38, 8)) as high,
    cast(null as decimal(38, 8)) as low,
    cast(null as decimal(38, 8)) as close,
    cast(null as decimal(38, 8)) as volume,
    cast(null as decimal(38, 8)) as quote_volume,
    cast(null as bigint) as trades,
    cast(null as date) as partition_date
where false
{% endif %}
