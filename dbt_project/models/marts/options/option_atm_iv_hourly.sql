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
-- One row per (hour, expiry) with trades: the at-the-money implied volatility of the expiry
-- in that UTC hour, from the hour's trades near the money. Method:
--   1. Reference index S = index_price of the hour's first trade of the expiry, by
--      (timestamp, trade_seq, instrument_name) (the index_price of option_expiry_hourly).
--   2. Per strike K: iv(K) = sum(iv * amount) / sum(amount) over the hour's trades at K with a
--      positive iv, calls and puts together (Deribit's iv 0 means "no solution").
--   3. Lower strike = the highest K < S with an iv(K); upper strike = the lowest K >= S.
--   4. Both exist: method 'interpolated', atm_iv linear in log-moneyness m = ln(K/S) between
--      them, evaluated at m = 0: iv_lo + (iv_up - iv_lo) * ln(S/K_lo) / ln(K_up/K_lo).
--      Only one exists and |K/S - 1| <= 0.05 (exact DECIMAL comparison): method 'nearest',
--      atm_iv = iv(K). Otherwise method 'none', atm_iv null (the row is still written, so the
--      grain matches option_expiry_hourly).
-- trades counts the trades whose iv entered atm_iv (0 for 'none').

with trades as (
    select
        hour,
        expiry,
        strike,
        iv,
        amount,
        index_price,
        {'ts': "timestamp", 'seq': {{ trade_tiebreak('trade_seq', 'trade_id') }}, 'instrument': instrument_name} as trade_order
    from {{ ref('stg_deribit__option_trades') }}
    where {{ options_window_filter('hour') }}
),

reference as (
    select
        hour,
        expiry,
        arg_min(index_price, trade_order) as index_price
    from trades
    group by hour, expiry
),

strikes as (
    select
        hour,
        expiry,
        strike,
        (sum(iv * amount) / sum(amount))::double as strike_iv,
        count(*)::bigint as strike_trades
    from trades
    where iv > 0 and amount > 0
    group by hour, expiry, strike
),

sides as (
    select
        r.hour,
        r.expiry,
        arg_max(
            {'strike': s.strike, 'iv': s.strike_iv, 'trades': s.strike_trades}, s.strike
        ) filter (where s.strike < r.index_price) as lower_side,
        arg_min(
            {'strike': s.strike, 'iv': s.strike_iv, 'trades': s.strike_trades}, s.strike
        ) filter (where s.strike >= r.index_price) as upper_side
    from reference as r
    inner join strikes as s on s.hour = r.hour and s.expiry = r.expiry
    group by r.hour, r.expiry
),

combined as (
    select
        r.hour,
        r.expiry,
        r.index_price,
        s.lower_side.strike as lower_strike,
        s.lower_side.iv as lower_iv,
        s.lower_side.trades as lower_trades,
        s.upper_side.strike as upper_strike,
        s.upper_side.iv as upper_iv,
        s.upper_side.trades as upper_trades,
        coalesce(s.lower_side.strike, s.upper_side.strike) as one_strike
    from reference as r
    left join sides as s on s.hour = r.hour and s.expiry = r.expiry
),

methods as (
    select
        *,
        case
            when lower_strike is not null and upper_strike is not null then 'interpolated'
            when one_strike is not null
                and abs(one_strike - index_price) <= 0.05 * index_price then 'nearest'
            else 'none'
        end as method
    from combined
)

select
    hour,
    expiry,
    {{ hours_to_expiry('hour', 'expiry') }} as hours_to_expiry,
    index_price,
    case method
        when 'interpolated' then lower_iv + (upper_iv - lower_iv)
            * ln(index_price::double / lower_strike::double)
            / ln(upper_strike::double / lower_strike::double)
        when 'nearest' then coalesce(lower_iv, upper_iv)
    end as atm_iv,
    method,
    lower_strike,
    lower_iv,
    upper_strike,
    upper_iv,
    (case method
        when 'interpolated' then lower_trades + upper_trades
        when 'nearest' then coalesce(lower_trades, upper_trades)
        else 0
    end)::bigint as trades
from methods
