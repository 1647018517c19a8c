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
-- One row per (hour, expiry): the flow of one Deribit expiry in one UTC hour, all strikes
-- and both option types together. Volumes in contracts (1 contract = 1 BTC); premium_usd is
-- the exact sum of price * amount * index_price over the trades, rounded to 8 decimals.
-- iv_volume_weighted uses only the trades with a positive iv (Deribit's 0 means "no
-- solution", not a volatility). index_price is that of the hour's first trade of the expiry
-- by (timestamp, trade_seq, instrument_name).

with trades as (
    select
        hour,
        expiry,
        instrument_name,
        strike,
        option_type,
        price,
        amount,
        iv,
        index_price,
        {'ts': "timestamp", 'seq': {{ trade_tiebreak('trade_seq', 'trade_id') }}, 'instrument': instrument_name} as trade_order
    from {{ ref('stg_deribit__option_trades') }}
    where {{ options_window_filter('hour') }}
),

hourly as (
    select
        hour,
        expiry,
        coalesce(sum(amount) filter (where option_type = 'C'), 0)::decimal(38, 8) as call_volume,
        coalesce(sum(amount) filter (where option_type = 'P'), 0)::decimal(38, 8) as put_volume,
        {{ usd_8dp('sum(price * amount * index_price)') }} as premium_usd,
        count(*)::bigint as trades,
        sum(iv * amount) filter (where iv > 0) as iv_amount,
        sum(amount) filter (where iv > 0) as iv_volume,
        count(distinct strike)::bigint as strikes_traded,
        count(distinct instrument_name)::bigint as instruments_traded,
        arg_min(index_price, trade_order) as index_price
    from trades
    group by hour, expiry
)

select
    hour,
    expiry,
    {{ hours_to_expiry('hour', 'expiry') }} as hours_to_expiry,
    call_volume,
    put_volume,
    call_volume + put_volume as volume,
    (put_volume / nullif(call_volume, 0))::double as put_call_ratio,
    premium_usd,
    trades,
    (iv_amount / nullif(iv_volume, 0))::double as iv_volume_weighted,
    strikes_traded,
    instruments_traded,
    index_price
from hourly
