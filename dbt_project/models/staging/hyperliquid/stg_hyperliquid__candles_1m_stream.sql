{{ config(materialized='ephemeral', tags=['utc_daily', 'capture']) }}
-- One row per (instrument, open_time) of the 1m candles the capture service wrote for its
-- closed hours (already the latest push of each minute). A partition run reads only the lake
-- files of its window. With no closed hour yet this is an empty relation of the same columns.
-- depends_on: {{ source('lake_hyperliquid', 'hyperliquid_candles_1m_stream') }}
{% if lake_has_files('hyperliquid', 'candles_1m_stream', 'date=*/hour=*/part.parquet') %}
{{ hyperliquid_candles_1m_rows(source('lake_hyperliquid', 'hyperliquid_candles_1m_stream')) }}
{% else %}
{{ empty_candles_1m() }}
{% endif %}
