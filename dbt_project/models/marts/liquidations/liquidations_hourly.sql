{{ config(materialized='view', tags=['utc_daily']) }}
-- One row per (source, instrument, hour) with a liquidation: how many, how much (contracts
-- and USDT notional, exact sums), and the longs liquidated (SELL orders) against the shorts
-- (BUY orders). A view over staging, so it holds every closed hour the capture wrote.

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
group by all
