{{
    config(
        materialized='incremental',
        incremental_strategy='window',
        unique_key=['hour', 'instrument'],
        on_schema_change='fail',
        meta={'window_column': 'hour', 'window_family': 'options'},
        tags=['options_hourly'],
    )
}}
-- One row per (hour, instrument): the hourly OHLC of a Deribit option from its trades.
-- First/last (open, close, *_open, *_close, index_price) are by (timestamp, trade_seq), the
-- instrument's own trade order, so trades sharing a millisecond are ordered by trade_seq.
-- Price OHLC uses every trade; iv_* and mark_* use only the trades carrying a value (a null
-- neither shifts the open nor makes it null), and are null when no trade of the hour has one.
-- USD prices are per trade (price * that trade's index_price), then OHLC over those; USD
-- amounts are exact DECIMAL products rounded half away from zero to 8 decimals.
-- index_price is the first trade's; distance (moneyness, percent) uses it: calls
-- (index - strike) / index * 100, puts (strike - index) / index * 100, positive in the money.
-- hours_to_expiry = whole hours from the hour start to expiry, rounded up, at least 1.

with trades as (
    select
        hour,
        instrument_name,
        expiry,
        strike,
        option_type,
        price,
        amount,
        iv,
        mark_price,
        index_price,
        -- exact (DECIMAL(38,16)); rounded to 8 decimals after the aggregation, which gives the
        -- same values (rounding is monotone) for a fraction of the cost
        price * index_price as price_usd,
        {{ trade_order_key('"timestamp"', trade_tiebreak('trade_seq', 'trade_id')) }} as trade_order
    from {{ ref('stg_deribit__option_trades') }}
    where {{ options_window_filter('hour') }}
),

hourly as (
    select
        hour,
        instrument_name,
        any_value(expiry) as expiry,
        any_value(strike) as strike,
        any_value(option_type) as option_type,
        arg_min(price, trade_order) as open,
        max(price) as high,
        min(price) as low,
        arg_max(price, trade_order) as close,
        arg_min(price_usd, trade_order) as open_usd,
        max(price_usd) as high_usd,
        min(price_usd) as low_usd,
        arg_max(price_usd, trade_order) as close_usd,
        arg_min(iv, trade_order) filter (where iv is not null) as iv_open,
        max(iv) as iv_high,
        min(iv) as iv_low,
        arg_max(iv, trade_order) filter (where iv is not null) as iv_close,
        arg_min(mark_price, trade_order) filter (where mark_price is not null) as mark_open,
        max(mark_price) as mark_high,
        min(mark_price) as mark_low,
        arg_max(mark_price, trade_order) filter (where mark_price is not null) as mark_close,
        sum(price * amount) as premium_btc,
        sum(amount) as volume,
        {{ usd_8dp('sum(amount * index_price)') }} as volume_usd,
        {{ usd_8dp('sum(price * amount * index_price)') }} as premium_usd,
        count(*)::bigint as trades,
        arg_min(index_price, trade_order) as index_price
    from trades
    group by hour, instrument_name
)

select
    hour,
    instrument_name as instrument,
    expiry,
    strike,
    option_type,
    {{ hours_to_expiry('hour', 'expiry') }} as hours_to_expiry,
    open,
    high,
    low,
    close,
    {{ usd_8dp('open_usd') }} as open_usd,
    {{ usd_8dp('high_usd') }} as high_usd,
    {{ usd_8dp('low_usd') }} as low_usd,
    {{ usd_8dp('close_usd') }} as close_usd,
    iv_open,
    iv_high,
    iv_low,
    iv_close,
    mark_open,
    mark_high,
    mark_low,
    mark_close,
    (premium_btc / nullif(volume, 0))::double as vwap,
    volume,
    volume_usd,
    premium_usd,
    trades,
    index_price,
    (case when option_type = 'C' then index_price - strike else strike - index_price end
        / index_price * 100)::double as distance
from hourly
