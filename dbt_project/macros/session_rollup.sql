{#- The CTEs that roll daily sessions (session_ohlc_daily) up into longer sessions: weekly and
    monthly. start_expr gives a daily row's period start from its `session_start` (e.g.
    weekly_session_start('session_start')); end_expr gives the period's end from the period's
    `session_start`. The last CTE, `rolled`, has one row per (source, instrument, period):
    open of the first daily session, close of the last, max high, min low, summed volumes
    and trades, move, chhigh/chlow/chclose (exact, 4 dp), chmax, chhightime/chlowtime (0-based
    index of the daily session in which the high and low were first reached),
    firstextremumtype, day_count, candle_count, session_end and counthours.

    The run's window [session_start_min, session_start_max) is applied to the period start of
    each daily row: for a window of whole periods (what the weekly and monthly partitions
    pass) that is exactly the daily sessions starting in it; a window not cut on periods (a
    daily partition's, in a `dbt build` of the whole project) rebuilds only the periods
    starting in it, each from all of its days, never a partial period over a complete one. -#}
{% macro rollup_daily_sessions(start_expr, end_expr) -%}
days as (
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
        {{ start_expr }} as session_start
    from {{ ref('session_ohlc_daily') }}
    -- only the daily sessions of the current anchor hour: rows of an earlier anchor, not yet
    -- replaced, would count their days twice
    where session_start = {{ daily_session_start('session_start') }}
),

windowed as (
    select * from days
    where {{ session_window_filter('session_start') }}
),

indexed as (
    select
        *,
        -- 0-based position of the daily session within its period (days since the period's
        -- start); a missing day leaves its slot empty, so the index always names the same day.
        ((epoch_ms(day_start) - epoch_ms(session_start)) // 86400000)::integer as day_index,
        max(high) over period as period_high,
        min(low) over period as period_low
    from windowed
    window period as (partition by source, instrument, session_start)
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
        -- NULL when a day's count is unknown, as in session_ohlc_daily
        case when count(trades) = count(*) then sum(trades)::bigint end as trades,
        min(day_index) filter (where high = period_high) as chhightime,
        min(day_index) filter (where low = period_low) as chlowtime,
        -- the order of the extremes within the day that reached the period's high first
        arg_min(day_firstextremumtype, day_index) filter (where high = period_high)
            as high_day_firstextremumtype,
        count(*)::integer as day_count,
        sum(candle_count)::integer as candle_count
    from indexed
    group by session_start, source, instrument
),

changes as (
    select
        *,
        {{ session_changes() }},
        {{ end_expr }} as session_end
    from sessions
),

rolled as (
    select
        *,
        ((epoch_ms(session_end) - epoch_ms(session_start)) // 3600000)::integer as counthours,
        case when up_move > down_move then chhigh else chlow end as chmax,
        case
            when chhightime < chlowtime then 'HIGH'
            when chlowtime < chhightime then 'LOW'
            -- both first reached in the same daily session: that session's order
            else high_day_firstextremumtype
        end as firstextremumtype
    from changes
)
{%- endmacro %}
