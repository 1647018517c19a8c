{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['source', 'instrument', 'session_start'],
        on_schema_change='fail',
        tags=['session_monthly'],
    )
}}
-- One row per (source, instrument, session_start): the OHLC of a monthly options session,
-- from the last session weekday of a month (the last Friday by default, Deribit's monthly
-- expiry) at the anchor hour to the last session weekday of the next month at the anchor
-- hour, 4 or 5 weeks later, built from the daily sessions of session_ohlc_daily. A month
-- with missing daily sessions is written and flagged incomplete.
--
-- The run's window [session_start_min, session_start_max) is applied to the monthly
-- session_start of each daily row. For a window of whole monthly sessions (what the monthly
-- partitions pass) that is exactly the daily sessions starting in the window; a window that
-- is not cut on monthly sessions (a daily partition's, in a `dbt build` of the whole
-- project) rebuilds only the months starting in it, each from all of its days, and never
-- writes a partial month over a complete one.

with days as (
    select
        session_start as day_start,
        source,
        instrument,
        open,
        high,
        low,
        close,
        volume,
        quote_volume,
        trades,
        firstextremumtype as day_firstextremumtype,
        candle_count,
        {{ monthly_session_start('session_start') }} as session_start
    from {{ ref('session_ohlc_daily') }}
),

windowed as (
    select * from days
    where {{ session_window_filter('session_start') }}
),

indexed as (
    select
        *,
        -- 0-based position of the daily session within its monthly session (days since the
        -- monthly start); a missing day leaves its slot empty, so the index always names the
        -- same day.
        ((epoch_ms(day_start) - epoch_ms(session_start)) // 86400000)::integer as day_index,
        max(high) over monthly as month_high,
        min(low) over monthly as month_low
    from windowed
    window monthly as (partition by source, instrument, session_start)
),

sessions as (
    select
        session_start,
        source,
        instrument,
        arg_min(open, day_start) as open,
        max(high) as high,
        min(low) as low,
        arg_max(close, day_start) as close,
        sum(volume) as volume,
        -- NULL only when no daily session has one (Hyperliquid sends no quote volume)
        sum(quote_volume) as quote_volume,
        sum(trades)::bigint as trades,
        min(day_index) filter (where high = month_high) as chhightime,
        min(day_index) filter (where low = month_low) as chlowtime,
        -- the order of the extremes within the day that reached the monthly high first
        arg_min(day_firstextremumtype, day_index) filter (where high = month_high)
            as high_day_firstextremumtype,
        count(*)::integer as day_count,
        sum(candle_count)::integer as candle_count
    from indexed
    group by session_start, source, instrument
),

bounds as (
    select
        *,
        {{ monthly_session_end('session_start') }} as session_end
    from sessions
),

changes as (
    select
        *,
        ((epoch_ms(session_end) - epoch_ms(session_start)) // 3600000)::integer as counthours,
        high - low as move,
        {{ pct_change_4dp('high', 'open') }} as chhigh,
        {{ pct_change_4dp('low', 'open') }} as chlow,
        {{ pct_change_4dp('close', 'open') }} as chclose,
        -- exact absolute changes (same denominator), to compare without rounding
        high - open as up_move,
        open - low as down_move
    from bounds
)

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
    case when up_move > down_move then chhigh else chlow end as chmax,
    chhightime,
    chlowtime,
    case
        when chhightime < chlowtime then 'HIGH'
        when chlowtime < chhightime then 'LOW'
        -- both first reached in the same daily session: that session's order
        else high_day_firstextremumtype
    end as firstextremumtype,
    counthours,
    counthours // 24 as countdays,
    day_count,
    day_count = counthours // 24 as is_complete,
    candle_count,
    counthours as expected_candle_count
from changes
