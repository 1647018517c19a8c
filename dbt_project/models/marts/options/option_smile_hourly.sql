{{
    config(
        materialized='incremental',
        incremental_strategy='window',
        unique_key=['hour', 'expiry'],
        on_schema_change='fail',
        meta={'window_column': 'hour', 'window_family': 'options'},
        tags=['options_hourly'],
    )
}}
-- One row per (hour, expiry) with trades that have a delta: the smile of the expiry in
-- that UTC hour from its trades (option_greeks), in implied-volatility percent. Method:
--   * points: per side (C/P) and strike, the volume-weighted iv and the volume-weighted
--     forward delta (not premium-adjusted) of the hour's trades with a positive iv;
--   * atm_iv: per strike (calls and puts together) the volume-weighted iv, linear in
--     log-moneyness ln(K/F) between the highest strike <= F and the lowest strike > F,
--     evaluated at K = F, where F = the median forward_price of the hour's trades of the
--     expiry; NULL unless both strikes traded (never extrapolated);
--   * iv_25d_call: the call points linear in delta between the point with the largest delta
--     <= 0.25 and the one with the smallest delta >= 0.25; iv_25d_put likewise on the put
--     points in |delta|; NULL unless both bracketing points exist and the wing (calls with
--     delta in (0, 0.5], puts with delta in [-0.5, 0)) has at least
--     var('smile_min_wing_trades', 2) trades;
--   * risk_reversal_25d = iv_25d_call - iv_25d_put; butterfly_25d = (iv_25d_call +
--     iv_25d_put) / 2 - atm_iv (NULL when a part is).
{%- set min_wing_trades = var('smile_min_wing_trades', 2) %}

with trades as (
    select hour, expiry, strike, option_type, amount::double as amount, iv, delta, forward_price
    from {{ ref('option_greeks') }}
    where {{ options_window_filter('hour') }}
        and delta is not null and iv > 0 and amount > 0
),

expiries as (
    select
        hour,
        expiry,
        median(forward_price) as forward_price,
        count(*)::bigint as trades,
        count(*) filter (where option_type = 'C' and delta > 0 and delta <= 0.5)::bigint
            as call_wing_trades,
        count(*) filter (where option_type = 'P' and delta < 0 and delta >= -0.5)::bigint
            as put_wing_trades
    from trades
    group by hour, expiry
),

strikes as (
    select hour, expiry, strike::double as strike, sum(iv * amount) / sum(amount) as iv
    from trades
    group by hour, expiry, strike
),

atm as (
    select
        e.hour,
        e.expiry,
        arg_max({'k': s.strike, 'iv': s.iv}, s.strike) filter (where s.strike <= e.forward_price)
            as lower,
        arg_min({'k': s.strike, 'iv': s.iv}, s.strike) filter (where s.strike > e.forward_price)
            as upper,
        any_value(e.forward_price) as forward_price
    from expiries as e
    join strikes as s on s.hour = e.hour and s.expiry = e.expiry
    group by e.hour, e.expiry
),

points as (
    select
        hour,
        expiry,
        option_type,
        strike,
        sum(iv * amount) / sum(amount) as iv,
        -- |delta|: calls' delta, puts' delta negated
        abs(sum(delta * amount) / sum(amount)) as abs_delta
    from trades
    group by hour, expiry, option_type, strike
),

wings as (
    select
        hour,
        expiry,
        option_type,
        arg_max({'d': abs_delta, 'iv': iv}, abs_delta) filter (where abs_delta <= 0.25) as lower,
        arg_min({'d': abs_delta, 'iv': iv}, abs_delta) filter (where abs_delta >= 0.25) as upper
    from points
    group by hour, expiry, option_type
),

wing_iv as (
    select
        hour,
        expiry,
        option_type,
        case
            when lower is null or upper is null then null
            when upper.d = lower.d then lower.iv
            else lower.iv + (upper.iv - lower.iv) * (0.25 - lower.d) / (upper.d - lower.d)
        end as iv_25d
    from wings
),

smile as (
    select
        e.hour,
        e.expiry,
        e.forward_price,
        e.trades,
        e.call_wing_trades,
        e.put_wing_trades,
        case
            when a.lower is null or a.upper is null then null
            else a.lower.iv + (a.upper.iv - a.lower.iv)
                * ln(e.forward_price / a.lower.k) / ln(a.upper.k / a.lower.k)
        end as atm_iv,
        case when e.call_wing_trades >= {{ min_wing_trades }} then c.iv_25d end as iv_25d_call,
        case when e.put_wing_trades >= {{ min_wing_trades }} then p.iv_25d end as iv_25d_put
    from expiries as e
    left join atm as a on a.hour = e.hour and a.expiry = e.expiry
    left join wing_iv as c on c.hour = e.hour and c.expiry = e.expiry and c.option_type = 'C'
    left join wing_iv as p on p.hour = e.hour and p.expiry = e.expiry and p.option_type = 'P'
)

select
    hour,
    expiry,
    (epoch_ms(expiry) - epoch_ms(hour)) / 86400000.0 as days_to_expiry,
    forward_price,
    atm_iv,
    iv_25d_call,
    iv_25d_put,
    iv_25d_call - iv_25d_put as risk_reversal_25d,
    (iv_25d_call + iv_25d_put) / 2 - atm_iv as butterfly_25d,
    trades,
    call_wing_trades,
    put_wing_trades
from smile
