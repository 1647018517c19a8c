{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['ticker', 'session_date'],
        on_schema_change='fail',
        tags=['equity_daily'],
    )
}}
-- One row per (ticker, session_date) of the run's trading days: the news published from that
-- day's New York midnight to the next trading day's (a weekend's news counts for Friday), how
-- many articles carried a sentiment on the ticker, each sentiment's count, and the net
-- sentiment score (positive - negative) / (articles with a sentiment), in [-1, 1], NULL when
-- none did. A trading day without news has a row of zeros. Incremental over the run's days.
with sessions as (
    select session_date, session_open
    from {{ ref('nyse_sessions') }}
    where {{ options_window_filter('session_open') }}
),

news as (
    select * from {{ ref('stg_polygon__news') }}
),

tickers as (
    select distinct ticker from news
    union
    select 'SPY'
)

select
    t.ticker,
    s.session_date,
    s.session_open as session_start,
    count(n.article_id)::integer as article_count,
    count(n.sentiment)::integer as with_sentiment,
    count(*) filter (where n.sentiment = 'positive')::integer as positive_count,
    count(*) filter (where n.sentiment = 'neutral')::integer as neutral_count,
    count(*) filter (where n.sentiment = 'negative')::integer as negative_count,
    (count(*) filter (where n.sentiment = 'positive')
        - count(*) filter (where n.sentiment = 'negative'))::double
        / nullif(count(n.sentiment), 0) as sentiment_score,
    min(n.published_utc) as first_published,
    max(n.published_utc) as last_published
from sessions as s
cross join tickers as t
left join news as n
    on n.session_date = s.session_date and n.ticker = t.ticker
group by t.ticker, s.session_date, s.session_open
