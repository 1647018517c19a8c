{{
    config(
        materialized='incremental',
        incremental_strategy='window',
        unique_key=['ticker', 'session_date'],
        on_schema_change='fail',
        meta={'window_column': 'session_start', 'window_family': 'options'},
        tags=['equity_daily'],
    )
}}
-- One row per (ticker, session_date): the regular-trading-hours session of a US equity or
-- index (SPY, I:VIX), from its minute bars inside the NYSE session (macros/equity.sql).
-- Extended-hours bars stay in raw and are left out here. Incremental over the run's trading
-- days (the hour window); with no window, every day.
{{ regular_sessions(ref('stg_polygon__aggs_1m')) }}
