{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['currency', 'day'],
        on_schema_change='fail',
        tags=['utc_daily'],
    )
}}
-- One row per (currency, day): Deribit's volatility index DVOL, its daily candle as Deribit
-- sends it (get_volatility_index_data, resolution 1D; the index in percentage points, e.g.
-- 75.51 = 75.51 % annualized 30-day implied volatility). A day's open need not equal the
-- previous close. Incremental over the run's UTC days; with no window, every day.
select
    currency,
    cast(open_time as date) as day,
    open,
    high,
    low,
    close
from {{ ref('stg_deribit__volatility_index') }}
where interval = '1d'
    and {{ options_window_filter('open_time') }}
