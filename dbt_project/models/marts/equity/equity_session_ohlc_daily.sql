{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['ticker', 'session_date'],
        on_schema_change='fail',
        tags=['equity_daily'],
    )
}}
-- One row per (ticker, session_date): the regular-trading-hours session of a US equity, from
-- its minute bars inside [session_open, session_close) of the NYSE calendar (09:30-16:00
-- New York time, 13:00 on an early close, flagged). Extended-hours bars stay in raw and are
-- left out here. open/close are the first and last bars' open and close, high/low the
-- extremes, volume the exact sum; vwap = sum(bar vwap * bar volume) / sum(volume), the
-- volume-weighted average of Polygon's own bar averages. Incremental over the run's trading
-- days (the hour window); with no window, every day.
with sessions as (
    select * from {{ ref('nyse_sessions') }}
    where {{ options_window_filter('session_open') }}
),

bars as (
    select b.*, s.session_date, s.session_open, s.session_close, s.is_early_close
    from {{ ref('stg_polygon__aggs_1m') }} as b
    inner join sessions as s
        on b.bar_time >= s.session_open and b.bar_time < s.session_close
)

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
    count(*)::integer as bar_count,
    is_early_close
from bars
group by ticker, session_date, session_open, session_close, is_early_close
