{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['source', 'instrument', 'hour'],
        on_schema_change='fail',
        tags=['utc_daily', 'capture'],
    )
}}
-- One row per (source, instrument, hour) with a liquidation: how many, how much (contracts
-- and USDT notional, exact sums), and the longs liquidated (SELL orders) against the shorts
-- (BUY orders).
-- Incremental over the run's UTC days (the options hour window); with no window, every day.

select
    source,
    instrument,
    date_trunc('hour', trade_time) as hour,
    count(*) as liquidations,
    sum(quantity) as quantity,
    sum(notional) as notional_usd,
    count(*) filter (where side = 'SELL') as longs_liquidated,
    coalesce(sum(notional) filter (where side = 'SELL'), 0) as longs_notional_usd,
    count(*) filter (where side = 'BUY') as shorts_liquidated,
    coalesce(sum(notional) filter (where side = 'BUY'), 0) as shorts_notional_usd
from {{ ref('stg_binance_futures__liquidations') }}
where {{ options_window_filter('trade_time') }}
group by all
