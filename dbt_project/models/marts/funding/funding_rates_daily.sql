{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['source', 'instrument', 'funding_date'],
        on_schema_change='fail',
        tags=['utc_daily'],
    )
}}
-- One row per (source, instrument, funding_date): the funding paid over a UTC day.
-- Summing the events' rates gives the day's funding whatever the interval (three 8-hourly
-- events before Hyperliquid's switch on 2023-06-08, 24 hourly ones after), so days on both
-- sides of the switch compare directly. Incremental over the run's UTC days (the options
-- hour window, [options_hour_min, options_hour_max)); with no window, every day.
with events as (
    select
        *,
        cast(funding_time as date) as funding_date
    from {{ ref('stg_hyperliquid__funding_rates') }}
    where {{ options_window_filter('funding_time') }}
)

select
    source,
    instrument,
    funding_date,
    count(*)::integer as funding_events,
    min(funding_interval_hours) as min_interval_hours,
    max(funding_interval_hours) as max_interval_hours,
    -- events the day should have at the interval in force (24 / hours)
    (sum(funding_interval_hours))::integer as hours_covered,
    sum(funding_rate) as funding_rate_sum,
    -- annualized only when the day's events cover its 24 hours: a partial day's sum is not
    -- a day's funding
    case when sum(funding_interval_hours) = 24 then sum(funding_rate) * 365 * 100 end
        as funding_apr_pct,
    -- in DECIMAL (each rate times 8 over its 1 or 8 hours, exactly), so that the mean is the
    -- same whatever order DuckDB adds the events in: a DOUBLE sum is not
    avg(case when funding_interval_hours = 8 then funding_rate else funding_rate * 8 end)
        as funding_rate_8h_avg,
    avg(premium) as premium_avg
from events
group by source, instrument, funding_date
