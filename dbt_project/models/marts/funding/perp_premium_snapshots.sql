{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['source', 'instrument', 'snapshot_time'],
        on_schema_change='fail',
        tags=['utc_daily'],
    )
}}
-- One row per (source, instrument, snapshot_time) of the asset-context snapshots: how far
-- the perp trades from its oracle (the index it converges to), and the funding that pays
-- for it. mark_premium = mark / oracle - 1 and mid_premium = mid / oracle - 1 (fractions,
-- exact DECIMAL division then DOUBLE; positive: the perp trades above the oracle);
-- premium is Hyperliquid's own premium (from its impact prices), as sent;
-- funding_rate_annualized = the hourly funding rate * 24 * 365.
-- Incremental over the run's UTC days (the options hour window); with no window, every day.

select
    source,
    instrument,
    snapshot_time,
    mark_price,
    oracle_price,
    mid_price,
    (mark_price / oracle_price - 1)::double as mark_premium,
    (mid_price / oracle_price - 1)::double as mid_premium,
    premium::double as premium,
    funding_rate::double as funding_rate,
    funding_rate::double * 24 * 365 as funding_rate_annualized,
    open_interest,
    (open_interest * oracle_price)::double as open_interest_usd
from {{ ref('stg_hyperliquid__asset_contexts') }}
where oracle_price > 0
    and {{ options_window_filter('snapshot_time') }}
