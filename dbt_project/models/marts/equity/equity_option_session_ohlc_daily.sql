{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['ticker', 'session_date'],
        on_schema_change='fail',
        tags=['equity_daily'],
    )
}}
-- One row per (option ticker, session_date): the regular-trading-hours session of each SPY
-- option tracked that day (polygon_spy_options_contracts), from its minute bars inside
-- [session_open, session_close) of the NYSE calendar; a contract without a trade in the
-- session has no row. open/close are the first and last bars' open and close, high/low the
-- extremes, volume the exact sum (contracts), vwap the volume-weighted average of the bars'
-- own averages. moneyness = strike / the underlying's session close (K/S); moneyness_at_open
-- = strike / the underlying's open (the selection's). time_to_expiry runs from the session's
-- close to the NYSE close of the expiration date. Incremental over the run's trading days.
with sessions as (
    select * from {{ ref('nyse_sessions') }}
    where {{ options_window_filter('session_open') }}
),

contracts as (
    select * from {{ ref('stg_polygon__options_contracts') }}
),

bars as (
    select b.*, s.session_date, s.session_open, s.session_close, s.is_early_close
    from {{ ref('stg_polygon__options_aggs_1m') }} as b
    inner join sessions as s
        on b.bar_time >= s.session_open and b.bar_time < s.session_close
),

per_contract as (
    select
        ticker,
        session_date,
        session_open as session_start,
        session_close as session_end,
        arg_min(open, bar_time) as open,
        max(high) as high,
        min(low) as low,
        arg_max(close, bar_time) as close,
        sum(volume) as volume,
        (sum(vwap * volume) / nullif(sum(volume), 0))::double as vwap,
        sum(transactions) as transactions,
        count(*)::integer as bar_count,
        is_early_close
    from bars
    group by ticker, session_date, session_open, session_close, is_early_close
)

select
    p.ticker,
    c.underlying_ticker,
    c.contract_type,
    c.strike_price,
    c.expiration_date,
    p.session_date,
    p.session_start,
    p.session_end,
    p.open,
    p.high,
    p.low,
    p.close,
    p.volume,
    p.vwap,
    p.transactions,
    p.bar_count,
    c.underlying_open,
    u.close as underlying_close,
    c.moneyness_at_open,
    (c.strike_price / u.close)::double as moneyness,
    expiry.session_close as expiry_close,
    (epoch(expiry.session_close) - epoch(p.session_end)) / 86400.0 as time_to_expiry_days,
    (epoch(expiry.session_close) - epoch(p.session_end)) / (86400.0 * 365) as time_to_expiry_years,
    p.is_early_close
from per_contract as p
inner join contracts as c
    on c.ticker = p.ticker and c.as_of = p.session_date
left join {{ ref('equity_session_ohlc_daily') }} as u
    on u.ticker = c.underlying_ticker and u.session_date = p.session_date
left join {{ ref('nyse_sessions') }} as expiry
    on expiry.session_date = c.expiration_date
