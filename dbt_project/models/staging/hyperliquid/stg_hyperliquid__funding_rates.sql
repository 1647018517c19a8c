{{ config(materialized='ephemeral', tags=['utc_daily']) }}
-- One row per (instrument, funding_time): Hyperliquid funding events with their interval.
-- Hyperliquid paid funding every 8 hours until 2023-06-08 and every hour since; a record's
-- rate is for the interval since the previous event. The interval is read from the data:
-- the gap to the previous event when it is one of Hyperliquid's intervals (1 h or 8 h),
-- else the gap to the next one (the first record, or one after a missed event, as on
-- 2023-07-02 19:00-21:00). Gaps are rounded to the hour (event times carry jitter).
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
    -- only the files of the run's window and a day on each side (the neighbours give the
    -- interval of the window's first and last events); all of them when no window is set
    where {{ lake_partition_filter('date', pad_days=1) }}
    qualify row_number() over (partition by coin, time order by date desc) = 1
),

gaps as (
    select
        *,
        round((epoch_ms(time) - epoch_ms(lag(time) over w)) / 3600000.0)::integer as hours_since_previous,
        round((epoch_ms(lead(time) over w) - epoch_ms(time)) / 3600000.0)::integer as hours_to_next
    from events
    window w as (partition by coin order by time)
)

select
    'hyperliquid' as source,
    coin as instrument,
    time as funding_time,
    funding_rate,
    premium,
    case
        when hours_since_previous in (1, 8) then hours_since_previous
        when hours_to_next in (1, 8) then hours_to_next
    end as funding_interval_hours,
    date as partition_date
from gaps
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
