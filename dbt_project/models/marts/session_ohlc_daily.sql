{{
    config(
        materialized='incremental',
        incremental_strategy='window',
        unique_key=['source', 'instrument', 'session_start'],
        on_schema_change='fail',
        meta={'window_column': 'session_start', 'window_family': 'session'},
        tags=['session_daily'],
    )
}}
-- One row per (source, instrument, session_start): the OHLC of a daily options session,
-- the 24 hours from the anchor hour (08:00 UTC by default). A session with missing candles
-- (an exchange halt, a partial pull) is written and flagged incomplete, never dropped.

with candles as (
    select
        *,
        {{ daily_session_start('open_time') }} as session_start
    from {{ ref('int_candles_1h') }}
    where {{ session_window_filter('open_time') }}
),

indexed as (
    select
        *,
        -- 0-based position of the candle's hour within its session (a missing candle leaves
        -- its slot empty, so the index always names the same hour of the session).
        ((epoch_ms(open_time) - epoch_ms(session_start)) // 3600000)::integer as candle_index,
        max(high) over session as session_high,
        min(low) over session as session_low
    from candles
    window session as (partition by source, instrument, session_start)
),

sessions as (
    select
        session_start,
        source,
        instrument,
        arg_min(open, open_time) as open,
        max(high) as high,
        min(low) as low,
        arg_max(close, open_time) as close,
        sum(volume) as volume,
        sum(quote_volume) as quote_volume,
        -- NULL when a candle's count is unknown (the replay's Hyperliquid freqtrade
        -- recordings keep none): a sum over the known ones would undercount
        case when count(trades) = count(*) then sum(trades)::bigint end as trades,
        min(candle_index) filter (where high = session_high) as chhightime,
        min(candle_index) filter (where low = session_low) as chlowtime,
        count(*)::integer as candle_count
    from indexed
    group by session_start, source, instrument
),

changes as (
    select
        *,
        {{ session_changes() }}
    from sessions
)

select
    session_start,
    session_start + interval 24 hour as session_end,
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
    case when up_move > down_move then chhigh else chlow end as chmax,
    chhightime,
    chlowtime,
    case
        when chhightime < chlowtime then 'HIGH'
        when chlowtime < chhightime then 'LOW'
        when up_move >= down_move then 'HIGH'
        else 'LOW'
    end as firstextremumtype,
    candle_count,
    24 as expected_candle_count,
    candle_count = 24 as is_complete
from changes
