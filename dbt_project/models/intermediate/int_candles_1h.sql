-- One row per (source, instrument, open_time): the 1h candles of every venue in one shape,
-- the input of the session marts. A venue is added here as one more branch of the union.
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

union all

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
from {{ ref('stg_hyperliquid__candles') }}
where interval = '1h'
