{{ config(materialized='ephemeral', tags=['equity_daily']) }}
-- One row per (as_of, ticker): the SPY options tracked on each trading day, chosen at the
-- open. Ephemeral: compiled into the marts, so each run reads the lake files of its window.
-- depends_on: {{ source('lake_polygon', 'polygon_spy_options_contracts') }}
{% if lake_has_files('polygon', 'spy_options_contracts') %}
select
    ticker,
    underlying_ticker,
    contract_type,
    exercise_style,
    expiration_date,
    strike_price,
    shares_per_contract,
    as_of,
    underlying_open,
    moneyness_at_open,
    date as partition_date
from {{ source('lake_polygon', 'polygon_spy_options_contracts') }}
-- only the files of the run's window (all of them when no window is set)
where {{ lake_partition_filter('date') }}
{% else %}
select
    cast(null as varchar) as ticker,
    cast(null as varchar) as underlying_ticker,
    cast(null as varchar) as contract_type,
    cast(null as varchar) as exercise_style,
    cast(null as date) as expiration_date,
    cast(null as decimal(38, 8)) as strike_price,
    cast(null as bigint) as shares_per_contract,
    cast(null as date) as as_of,
    cast(null as decimal(38, 8)) as underlying_open,
    cast(null as decimal(38, 8)) as moneyness_at_open,
    cast(null as date) as partition_date
where false
{% endif %}
