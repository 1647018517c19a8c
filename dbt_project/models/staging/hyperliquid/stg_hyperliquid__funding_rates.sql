{{ config(materialized='ephemeral', tags=['utc_daily']) }}
-- One row per (instrument, funding_time): Hyperliquid funding events with their interval.
-- Hyperliquid paid funding every 8 hours until 2023-06-08 00:00 UTC and every hour since
-- (its events: 8-hourly up to that 00:00, hourly from 01:00). A record's rate is for one
-- interval of the schedule in force at its time, also after missed events: after a gap in
-- the hourly schedule the next event pays one hour (BTC 2024-08-15 14:00, after a 2-hour
-- gap, pays the one-hour baseline 0.00125 %), so a gap never stretches an interval and the
-- missed hours leave the day incomplete (funding_rates_daily.hours_covered).
-- Ephemeral: compiled into funding_rates_daily, so each run reads only the lake files of its
-- own window and a day on each side; the mart holds the history.
-- depends_on: {{ source('lake_hyperliquid', 'hyperliquid_funding_rates') }}
{% if lake_has_files('hyperliquid', 'funding_rates') %}
with events as (
    select
        coin,
        time,
        funding_rate,
        premium,
        date
    from {{ source('lake_hyperliquid', 'hyperliquid_funding_rates') }}
    -- only the files of the run's window and a day on each side (an event filed in a
    -- neighbouring day's partition); all of them when no window is set
    where {{ lake_partition_filter('date', pad_days=1) }}
    qualify row_number() over (partition by coin, time order by date desc) = 1
)

select
    'hyperliquid' as source,
    coin as instrument,
    time as funding_time,
    funding_rate,
    premium,
    -- the last 8-hourly event was 2023-06-08 00:00 (its time carries jitter: 00:00:00.254)
    case when time < timestamptz '2023-06-08 00:30:00+00' then 8 else 1 end
        as funding_interval_hours,
    date as partition_date
from events
{% else %}
select
    'hyperliquid' as source,
    cast(null as varchar) as instrument,
    cast(null as timestamptz) as funding_time,
    cast(null as decimal(38, 12)) as funding_rate,
    cast(null as decimal(38, 12)) as premium,
    cast(null as integer) as funding_interval_hours,
    cast(null as date) as partition_date
where false
{% endif %}
