{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['source', 'instrument', 'session_start'],
        on_schema_change='fail',
        tags=['session_daily'],
    )
}}
-- One row per (source, instrument, session_start): the realized volatility of a daily
-- session from its 1h candles, by five estimators, annualized decimals (0.45 = 45 %).
-- Conventions (the model's yml cites each estimator):
--   * per-candle log terms in DOUBLE from the DECIMAL prices: o = ln(open / previous close),
--     c = ln(close / open), r = ln(close / previous close), u = ln(high / open),
--     d = ln(low / open);
--   * returns over a candle boundary (r, o) only between consecutive candles of the same
--     session (the previous candle exactly one hour earlier): a session's first candle, and
--     the candle after a missing one, have none;
--   * variances per hour, annualized by 365 * 24 = 8760 hours (crypto trades every hour of
--     the year), volatility = sqrt(variance * 8760); NULL where the variance is undefined
--     (too few candles) or negative (Garman-Klass and Yang-Zhang can be, on rare sessions);
--   * sample variances (var_samp, n - 1) for close-to-close and for Yang-Zhang's overnight
--     and open-to-close parts, means (n) for the range-based estimators;
--   * an incomplete session (fewer than 24 candles) is written and flagged is_complete =
--     false, never mixed silently into a complete one.

with candles as (
    select
        source,
        instrument,
        open_time,
        open::double as open,
        high::double as high,
        low::double as low,
        close::double as close,
        {{ daily_session_start('open_time') }} as session_start
    from {{ ref('int_candles_1h') }}
    where {{ session_window_filter('open_time') }}
),

terms as (
    select
        *,
        lag(close) over w as previous_close,
        lag(open_time) over w as previous_open_time
    from candles
    window w as (partition by source, instrument, session_start order by open_time)
),

logs as (
    select
        source,
        instrument,
        session_start,
        ln(close / open) as c,
        ln(high / open) as u,
        ln(low / open) as d,
        ln(high / low) as hl,
        case
            when previous_open_time = open_time - interval 1 hour
            then ln(close / previous_close)
        end as r,
        case
            when previous_open_time = open_time - interval 1 hour
            then ln(open / previous_close)
        end as o
    from terms
),

sessions as (
    select
        source,
        instrument,
        session_start,
        count(*)::integer as candle_count,
        count(r)::integer as return_count,
        var_samp(r) as var_close_to_close,
        sum(hl * hl) / (4 * ln(2) * count(*)) as var_parkinson,
        avg(0.5 * hl * hl - (2 * ln(2) - 1) * c * c) as var_garman_klass,
        avg(u * (u - c) + d * (d - c)) as var_rogers_satchell,
        var_samp(o) as var_overnight,
        var_samp(c) as var_open_to_close
    from logs
    group by source, instrument, session_start
),

yang_zhang as (
    select
        *,
        -- Yang and Zhang's k, minimising the estimator's variance, with n the candles
        case
            when candle_count > 1 then 0.34 / (1.34 + (candle_count + 1) / (candle_count - 1))
        end as yz_k
    from sessions
)

select
    session_start,
    session_start + interval 24 hour as session_end,
    source,
    instrument,
    {{ annualized_volatility('var_close_to_close') }} as rv_close_to_close,
    {{ annualized_volatility('var_parkinson') }} as rv_parkinson,
    {{ annualized_volatility('var_garman_klass') }} as rv_garman_klass,
    {{ annualized_volatility('var_rogers_satchell') }} as rv_rogers_satchell,
    {{ annualized_volatility(
        'var_overnight + yz_k * var_open_to_close + (1 - yz_k) * var_rogers_satchell'
    ) }} as rv_yang_zhang,
    candle_count,
    return_count,
    24 as expected_candle_count,
    candle_count = 24 as is_complete
from yang_zhang
