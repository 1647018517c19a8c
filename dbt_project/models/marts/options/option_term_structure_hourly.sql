{{
    config(
        materialized='incremental',
        incremental_strategy='window',
        unique_key=['hour', 'maturity_days'],
        on_schema_change='fail',
        meta={'window_column': 'hour', 'window_family': 'options'},
        tags=['options_hourly'],
    )
}}
-- One row per (hour with option trades, fixed maturity of 7, 30, 60 or 90 days): the ATM
-- implied volatility at that maturity, from option_smile_hourly's atm_iv per expiry, by
-- linear interpolation in total variance w = atm_iv^2 * T between the expiries bracketing
-- it (T = days from the hour's start to expiry / 365): w(tau) = w1 + (w2 - w1) (tau - T1) /
-- (T2 - T1), atm_iv = sqrt(w(tau) / tau). NULL when no expiry with an atm_iv lies on one
-- side (never extrapolated), or when the interpolated variance is negative.

with expiries as (
    select hour, expiry, days_to_expiry / 365.0 as t, atm_iv * atm_iv * days_to_expiry / 365.0 as w
    from {{ ref('option_smile_hourly') }}
    where {{ options_window_filter('hour') }} and atm_iv is not null
),

hours as (
    select distinct hour
    from {{ ref('option_smile_hourly') }}
    where {{ options_window_filter('hour') }}
),

targets as (
    select h.hour, m.maturity_days, m.maturity_days / 365.0 as tau
    from hours as h
    cross join (values (7), (30), (60), (90)) as m(maturity_days)
),

bracketed as (
    select
        g.hour,
        g.maturity_days,
        any_value(g.tau) as tau,
        arg_max({'expiry': e.expiry, 't': e.t, 'w': e.w}, e.t) filter (where e.t <= g.tau)
            as lower,
        arg_min({'expiry': e.expiry, 't': e.t, 'w': e.w}, e.t) filter (where e.t >= g.tau)
            as upper
    from targets as g
    left join expiries as e on e.hour = g.hour
    group by g.hour, g.maturity_days
),

interpolated as (
    select
        hour,
        maturity_days,
        lower,
        upper,
        case
            when lower is null or upper is null then null
            when upper.t = lower.t then lower.w
            else lower.w + (upper.w - lower.w) * (tau - lower.t) / (upper.t - lower.t)
        end * 1.0 / tau as variance_rate
    from bracketed
)

select
    hour,
    maturity_days,
    case when variance_rate >= 0 then sqrt(variance_rate) end as atm_iv,
    lower.expiry as lower_expiry,
    upper.expiry as upper_expiry
from interpolated
