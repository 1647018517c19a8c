{{ config(materialized='ephemeral', tags=['utc_daily', 'capture']) }}
-- One row per liquidation of the closed hours the capture service wrote (each once: the
-- capture already keeps a liquidation received twice once). A partition run reads only the
-- lake files of its window (lake_partition_filter). With no closed hour yet this is an
-- empty relation of the same columns and types.
-- depends_on: {{ source('lake_binance_futures', 'binance_futures_liquidations_stream') }}
{% if lake_has_files('binance_futures', 'liquidations_stream', 'date=*/hour=*/part.parquet') %}
select
    'binance_futures' as source,
    symbol as instrument,
    trade_time,
    event_time,
    side,
    filled_quantity as quantity,
    average_price,
    filled_quantity * average_price as notional,
    date as partition_date
from {{ source('lake_binance_futures', 'binance_futures_liquidations_stream') }}
-- only the files of the run's window (all of them when no window is set)
where {{ lake_partition_filter('date') }}
{% else %}
select
    'binance_futures' as source,
    cast(null as varchar) as instrument,
    cast(null as timestamptz) as trade_time,
    cast(null as timestamptz) as event_time,
    cast(null as varchar) as side,
    cast(null as decimal(38, 8)) as quantity,
    cast(null as decimal(38, 8)) as average_price,
    cast(null as decimal(38, 16)) as notional,
    cast(null as date) as partition_date
where false
{% endif %}
