{{
    config(
        materialized='incremental',
        incremental_strategy='window',
        unique_key=['hour', 'expiry'],
        on_schema_change='fail',
        meta={'window_column': 'hour', 'window_family': 'options'},
        tags=['options_hourly'],
    )
}}
-- One row per (hour, expiry) with trades: who traded the expiry in that UTC hour. Deribit's
-- direction is the taker's side, so taker_buy_volume is the volume of trades whose taker
-- bought. A trade with a block_trade_id is a leg of a block trade (negotiated off the book,
-- each leg its own trade); the rest traded on screen. Volumes in contracts (1 contract = 1
-- BTC), USD amounts exact DECIMAL products rounded half away from zero to 8 decimals:
-- notional_usd = sum(amount * index_price), premium_usd = sum(price * index_price * amount).
-- net_delta = sum over trades of (+1 taker buy, -1 taker sell) * amount * delta, the Black-76
-- forward delta of option_greeks: the delta (BTC) the takers bought; trades without a delta
-- (no iv) are left out of it and counted in trades_without_delta.

select
    hour,
    expiry,
    coalesce(sum(amount) filter (where direction = 'buy'), 0)::decimal(38, 8) as taker_buy_volume,
    coalesce(sum(amount) filter (where direction = 'sell'), 0)::decimal(38, 8)
        as taker_sell_volume,
    coalesce(sum(amount) filter (where block_trade_id is null), 0)::decimal(38, 8)
        as onscreen_volume,
    coalesce(sum(amount) filter (where block_trade_id is not null), 0)::decimal(38, 8)
        as block_volume,
    {{ usd_8dp('sum(amount * index_price)') }} as notional_usd,
    {{ usd_8dp('sum(price * index_price * amount)') }} as premium_usd,
    coalesce(
        sum(case when direction = 'buy' then 1 else -1 end * amount::double * delta), 0
    ) as net_delta,
    count(*)::bigint as trades,
    count(*) filter (where block_trade_id is not null)::bigint as block_trades,
    count(distinct block_trade_id)::bigint as blocks,
    count(*) filter (where delta is null)::bigint as trades_without_delta
from {{ ref('option_greeks') }}
where {{ options_window_filter('hour') }}
group by hour, expiry
