{{
    config(
        materialized='incremental',
        incremental_strategy='window',
        unique_key=['source', 'instrument', 'session_start'],
        on_schema_change='fail',
        meta={'window_column': 'session_start', 'window_family': 'session'},
        tags=['session_weekly'],
    )
}}
-- One row per (source, instrument, session_start): the OHLC of a weekly options session,
-- the 168 hours from the session weekday (Friday by default, Deribit's weekly expiry) at the
-- anchor hour to the same weekday and hour a week later, built from the daily sessions of
-- session_ohlc_daily. A week with missing daily sessions is written and flagged incomplete.
-- The rollup and its window rule are in macros/session_rollup.sql.

with {{ rollup_daily_sessions(weekly_session_start('session_start'), "session_start + interval 168 hour") }}

select
    session_start,
    session_end,
    source,
    instrument,
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
