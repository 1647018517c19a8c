{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='session_date',
        on_schema_change='fail',
        tags=['equity_daily'],
    )
}}
-- The consolidated minute view of the replaced system, per trading day: one row per minute of
-- the regular session and tracked SPY option (polygon_spy_options_contracts of that day),
-- with SPY's minute bar, VIX's minute value and the option's minute bar side by side. A
-- minute in which a series did not trade has NULLs in its columns; a day without tracked
-- options has one row per minute with NULL option columns. Incremental over the run's days:
-- a rebuilt day replaces the day (unique_key a single column, so dbt deletes with
-- `session_date in (...)`; a list would make it join the day's rows with themselves, tens of
-- thousands squared).
with sessions as (
    select * from {{ ref('nyse_sessions') }}
    where {{ options_window_filter('session_open') }}
),

minutes as (
    select
        s.session_date,
        to_timestamp(m.epoch_s) as bar_time
    from sessions as s,
        unnest(range(epoch(s.session_open)::bigint, epoch(s.session_close)::bigint, 60)) as m(epoch_s)
),

bars as (
    select * from {{ ref('stg_polygon__aggs_1m') }}
),

contracts as (
    select * from {{ ref('stg_polygon__options_contracts') }}
),

options as (
    select * from {{ ref('stg_polygon__options_aggs_1m') }}
)

select
    m.bar_time,
    m.session_date,
    spy.open as spy_open,
    spy.high as spy_high,
    spy.low as spy_low,
    spy.close as spy_close,
    spy.volume as spy_volume,
    vix.close as vix_close,
    c.ticker as option_ticker,
    c.contract_type,
    c.strike_price,
    c.expiration_date,
    o.open as option_open,
    o.high as option_high,
    o.low as option_low,
    o.close as option_close,
    o.volume as option_volume
from minutes as m
left join bars as spy
    on spy.ticker = 'SPY' and spy.bar_time = m.bar_time
left join bars as vix
    on vix.ticker = 'I:VIX' and vix.bar_time = m.bar_time
left join contracts as c
    on c.as_of = m.session_date
left join options as o
    on o.ticker = c.ticker and o.bar_time = m.bar_time
