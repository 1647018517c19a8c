{{
    config(
        materialized='incremental',
        incremental_strategy='window',
        unique_key=['source', 'instrument', 'session_start'],
        on_schema_change='fail',
        meta={'window_column': 'session_start', 'window_family': 'session'},
        tags=['session_monthly'],
    )
}}
-- One row per (source, instrument, session_start): the OHLC of a monthly options session,
-- from the last session weekday of a month (the last Friday by default, Deribit's monthly
-- expiry) at the anchor hour to the last session weekday of the next month at the anchor
-- hour, 4 or 5 weeks later, built from the daily sessions of session_ohlc_daily. A month
-- with missing daily sessions is written and flagged incomplete.
-- The rollup and its window rule are in macros/session_rollup.sql.

with {{ rollup_daily_sessions(monthly_session_start('session_start'), monthly_session_end('session_start')) }}

select
    session_start,
    session_end,
    source,
    instrument,
    year(timezone('UTC', session_start))::integer as year,
    month(timezone('UTC', session_start))::integer as month,
    open,
    high,
    low,
    close,
    volume,
    quote_volume,
    trades,
    move,
    chhigh,
    chlow,
    chclose,
    chmax,
    chhightime,
    chlowtime,
    firstextremumtype,
    counthours,
    counthours // 24 as countdays,
    day_count,
    day_count = counthours // 24 as is_complete,
    candle_count,
    counthours as expected_candle_count
from rolled
