{#- The regular-trading-hours sessions of the minute bars in ``bars`` (a relation with ticker,
    bar_time, open, high, low, close, volume, vwap, transactions), one row per (ticker,
    trading day) of the run's window: the bars inside [session_open, session_close) of the
    NYSE calendar (nyse_sessions: 09:30-16:00 New York time, 13:00 on an early close,
    flagged). open/close are the first and last bars' open and close, high/low the extremes,
    volume and transactions exact sums; vwap = sum(bar vwap * bar volume) / sum(volume), the
    volume-weighted average of Polygon's own bar averages (NULL without volume, as for an
    index). A select statement, for a model or a CTE. -#}
{% macro regular_sessions(bars) -%}
with sessions as (
    select * from {{ ref('nyse_sessions') }}
    where {{ options_window_filter('session_open') }}
),

session_bars as (
    select b.*, s.session_date, s.session_open, s.session_close, s.is_early_close
    from {{ bars }} as b
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
    sum(transactions) as transactions,
    count(*)::integer as bar_count,
    is_early_close
from session_bars
group by ticker, session_date, session_open, session_close, is_early_close
{%- endmacro %}
