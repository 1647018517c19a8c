{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['source', 'instrument', 'open_time'],
        on_schema_change='fail',
        tags=['utc_daily', 'capture'],
    )
}}
-- One row per (source, instrument, open_time) of Hyperliquid's one-minute candles: the
-- minutes the capture service streamed and those the REST pull (candleSnapshot) backfilled,
-- merged by Kirby's rule, field by field: coalesce(rest, stream). Where the REST candle has a
-- value it stands (it is the exchange's closed record of the minute, while a captured minute
-- can be the last push before a disconnect); where it has none (NULL, or no REST candle at
-- all) the captured value stays. A REST backfill never replaces a captured value with NULL.
-- Incremental over the run's UTC days (the options hour window); with no window, every day.
with stream as (
    select * from {{ ref('stg_hyperliquid__candles_1m_stream') }}
    where {{ options_window_filter('open_time') }}
),

rest as (
    select * from {{ ref('stg_hyperliquid__candles_1m') }}
    where {{ options_window_filter('open_time') }}
)

select
    'hyperliquid' as source,
    coalesce(rest.instrument, stream.instrument) as instrument,
    coalesce(rest.open_time, stream.open_time) as open_time,
    coalesce(rest.close_time, stream.close_time) as close_time,
    coalesce(rest.open, stream.open) as open,
    coalesce(rest.high, stream.high) as high,
    coalesce(rest.low, stream.low) as low,
    coalesce(rest.close, stream.close) as close,
    coalesce(rest.volume, stream.volume) as volume,
    coalesce(rest.trades, stream.trades) as trades,
    case
        when rest.instrument is null then 'stream'
        when stream.instrument is null then 'rest'
        else 'stream+rest'
    end as origin
from stream
full outer join rest
    on stream.instrument = rest.instrument
    and stream.open_time = rest.open_time
