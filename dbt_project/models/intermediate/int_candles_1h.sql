{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['source', 'instrument', 'open_time'],
        on_schema_change='fail',
    )
}}
-- One row per (source, instrument, open_time): the 1h candles of every venue in one shape,
-- the input of the session marts. A venue is added here as one more branch of the union.
-- A table, incremental over the run's window: the staging models are ephemeral (compiled
-- in here), each reading only the lake files of this run's window, and this table keeps the
-- history. (As a view it held the window of whichever run built it last, so a mart built
-- in another run read another window.)
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
