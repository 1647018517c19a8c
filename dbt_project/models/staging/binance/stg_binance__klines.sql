-- One row per (instrument, interval, open_time): Binance spot klines, renamed to the
-- platform's terms and deduplicated (a re-pulled partition replaces its file, so duplicates
-- can only come from overlapping files; the newest pull wins). A partition run reads only
-- the lake files of its window (lake_partition_filter), so the view in the warehouse shows
-- the rows of the last run's window; the marts hold the history.
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
