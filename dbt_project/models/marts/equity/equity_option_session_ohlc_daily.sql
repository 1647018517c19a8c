{{
    config(
        materialized='incremental',
        incremental_strategy='window',
        unique_key=['ticker', 'session_date'],
        on_schema_change='fail',
        meta={'window_column': 'session_start', 'window_family': 'options'},
        tags=['equity_daily'],
    )
}}
-- One row per (option ticker, session_date): the regular-trading-hours session of each SPY
-- option tracked that day (polygon_spy_options_contracts), from its minute bars inside
-- [session_open, session_close) of the NYSE calendar; a contract without a trade in the
-- session has no row; the session's figures are those of macros/equity.sql (volume in
-- contracts, premiums in USD per share). moneyness = strike / the underlying's session close
-- (K/S); moneyness_at_open = strike / the underlying's open (the selection's).
-- time_to_expiry runs from the session's close to the NYSE close of the expiration date. Incremental over the run's trading days.
with per_contract as (
    {{ regular_sessions(ref('stg_polygon__options_aggs_1m')) }}
),

contracts as (
    select * from {{ ref('stg_polygon__options_contracts') }}
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
