{{ config(materialized='ephemeral') }}
-- One row per (instrument, interval, open_time): Deribit's volatility index DVOL in the
-- platform's terms, the index in percent exactly as sent. Deribit's resolutions become the
-- platform's intervals: 1D is '1d' (a UTC day), 3600 is '1h'. A re-pulled partition replaces its
-- file, so duplicates can only come from overlapping files; the newest partition wins.
-- Ephemeral: compiled into dvol_daily, so each run reads only the lake files of its own
-- window (lake_partition_filter).
-- With no lake file yet (DVOL never pulled) this is an empty relation of the same columns.
-- depends_on: {{ source('lake_deribit', 'deribit_volatility_index') }}
{% if lake_has_files('deribit', 'volatility_index') %}
select
    'deribit' as source,
    currency || ' DVOL' as instrument,
    currency,
    case resolution when '1D' then '1d' when '3600' then '1h' end as interval,
    "timestamp" as open_time,
    "timestamp" + case resolution
        when '1D' then interval 1 day when '3600' then interval 1 hour
    end as close_time,
    open,
    high,
    low,
    close,
    "date" as partition_date
from {{ source('lake_deribit', 'deribit_volatility_index') }}
-- only the files of the run's window (all of them when no window is set)
where {{ lake_partition_filter('"date"') }}
qualify row_number() over (
    partition by currency, resolution, "timestamp" order by "date" desc
) = 1
{% else %}
select
    'deribit' as source,
    cast(null as varchar) as instrument,
    cast(null as varchar) as currency,
    cast(null as varchar) as interval,
    cast(null as timestamptz) as open_time,
    cast(null as timestamptz) as close_time,
    cast(null as decimal(38, 8)) as open,
    cast(null as decimal(38, 8)) as high,
    cast(null as decimal(38, 8)) as low,
    cast(null as decimal(38, 8)) as close,
    cast(null as date) as partition_date
where false
{% endif %}
