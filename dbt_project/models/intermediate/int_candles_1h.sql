-- One row per (source, instrument, open_time): the 1h candles of every venue in one shape,
-- the input of the session marts. Later venues are added here as a union.
select
    source,
    instrument,
    open_time,
    open,
    high,
    low,
    close,
    volume,
    quote_volume,
    trades
from {{ ref('stg_binance__klines') }}
where interval = '1h'
