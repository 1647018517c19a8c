{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['source', 'instrument', 'minute'],
        on_schema_change='fail',
        tags=['utc_daily', 'capture'],
    )
}}
-- One row per (source, instrument, minute) of the captured asset contexts: the funding rate
-- (hourly, and annualized: * 24 * 365), open interest in contracts and in USDC (open
-- interest * oracle price, exact), the mark and oracle prices and the mark's premium to the
-- oracle.
-- Incremental over the run's UTC days (the options hour window); with no window, every day.

select
    source,
    instrument,
    minute,
    funding_rate,
    funding_rate::double * 24 * 365 as funding_rate_annualized,
    open_interest,
    open_interest * oracle_price as open_interest_usd,
    mark_price,
    oracle_price,
    (mark_price / oracle_price - 1)::double as mark_premium
from {{ ref('stg_hyperliquid__asset_contexts_1m') }}
where oracle_price > 0
    and {{ options_window_filter('minute') }}
