{{ config(materialized='ephemeral', tags=['utc_daily', 'capture']) }}
-- One row per (instrument, open_time) of Hyperliquid's 1m candles pulled over REST
-- (candleSnapshot), deduplicated across partition files. A partition run reads only the lake
-- files of its window. With no pull yet this is an empty relation of the same columns.
-- depends_on: {{ source('lake_hyperliquid', 'hyperliquid_candles_1m') }}
{% if lake_has_files('hyperliquid', 'candles_1m') %}
{{ hyperliquid_candles_1m_rows(source('lake_hyperliquid', 'hyperliquid_candles_1m')) }}
qualify row_number() over (partition by coin, open_time order by date desc) = 1
{% else %}
{{ empty_candles_1m() }}
{% endif %}
