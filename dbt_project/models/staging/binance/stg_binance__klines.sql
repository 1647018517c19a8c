{{ config(materialized='ephemeral') }}
-- One row per (instrument, interval, open_time): Binance spot klines, renamed to the
-- platform's terms and deduplicated (a re-pulled partition replaces its file, so duplicates
-- can only come from overlapping files; the newest pull wins). Ephemeral: compiled into
-- int_candles_1h, so each run reads only the lake files of its own window
-- (lake_partition_filter); int_candles_1h holds the history.
-- With no lake file yet (Binance never pulled, e.g. a run of other venues only) this is an
-- empty relation of the same columns and types, so the marts over every venue still build.
-- depends_on: {{ source('lake_binance', 'binance_klines_1h') }}
{% if lake_has_files('binance', 'klines_1h') %}
with klines as (
    select
        'binance' as source,
        symbol as instrument,
        '1h' as interval,
        open_time,
        close_time,
        open,
        high,
        low,
        close,
        volume,
        quote_volume,
        trades,
        taker_buy_base_volume,
        taker_buy_quote_volume,
        date as partition_date
    from {{ source('lake_binance', 'binance_klines_1h') }}
    -- only the files of the run's window (all of them when no window is set)
    where {{ lake_partition_filter('date') }}
)

select *
from klines
qualify row_number() over (
    partition by instrument, interval, open_time order by partition_date desc
) = 1
{% else %}
select
    'binance' as source,
    cast(null as varchar) as instrument,
    '1h' as interval,
    cast(null as timestamptz) as open_time,
    cast(null as timestamptz) as close_time,
    cast(null as decimal(38, 8)) as open,
    cast(null as decimal(38, 8)) as high,
    cast(null as decimal(38, 8)) as low,
    cast(null as decimal(38, 8)) as close,
    cast(null as decimal(38, 8)) as volume,
    cast(null as decimal(38, 8)) as quote_volume,
    cast(null as bigint) as trades,
    cast(null as decimal(38, 8)) as taker_buy_base_volume,
    cast(null as decimal(38, 8)) as taker_buy_quote_volume,
    cast(null as date) as partition_date
where false
{% endif %}
