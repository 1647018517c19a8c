{{
    config(
        materialized='incremental',
        incremental_strategy='window',
        unique_key=['hour', 'trade_id'],
        on_schema_change='fail',
        meta={'window_column': 'hour', 'window_family': 'options'},
        tags=['options_hourly'],
    )
}}
-- One row per Deribit option trade: its Black-76 greeks at the trade, from the trade's own iv.
-- Deribit prices options with r = 0 on the expiry's forward; its public trades carry the
-- index, not the forward, so the forward of an (hour, expiry) is implied from the hour's own
-- trades, as a ratio to the index (1 + the basis); forward_price = the trade's index price
-- times that ratio, so the forward follows the index within the hour:
--   1. from the trades' prices and ivs (forward_source 'trade_iv'): Deribit quotes an
--      inverse option at its Black-76 value over the forward, price = B76(F, K, T, iv) / F,
--      so each trade with an iv gives the F that makes that true (bisection over [0.5, 2]
--      times the index, 50 halvings: 1e-15 relative; a trade whose F is not inside is left
--      out); the ratio = the median over the trades of F / the trade's index price. On the
--      recorded 2024-04-01 trades it lands within 0.01 % of the forward Amberdata recorded
--      for the median trade (tests/test_option_analytics.py);
--   2. else, from put-call parity of the hour's pairs (forward_source 'put_call_parity';
--      inverse options, priced in BTC: C - P = (F - K) / F, so F = K / (1 - (C - P))): each
--      put trade with the latest call trade of the same expiry and strike at or before it in
--      the same hour, and each call trade with the latest such put, at most 300 s apart
--      (trades of one side, strike and millisecond count once, at their volume-weighted
--      price); the ratio = the median over the pairs of K / (1 - (C - P)) divided by the
--      index price of the pair's later trade (within 0.1 % of Amberdata's forward for the
--      median trade, ten times further than 1.);
--   3. else the trade's index price (forward_source 'index': the basis is ignored, which
--      for expiries months out understates F by 5-20 %).
-- T = (expiry - timestamp) in years of 365 days; sigma = iv / 100. Greeks are null when
-- T <= 0 or the trade has no positive iv.

with recursive trades as (
    select
        trade_id,
        "timestamp",
        hour,
        instrument_name,
        expiry,
        strike,
        option_type,
        direction,
        amount,
        price,
        iv,
        index_price,
        block_trade_id,
        (epoch_ms(expiry) - epoch_ms("timestamp")) / 31536000000.0 as time_to_expiry_years,
        case when iv > 0 then iv / 100 end as sigma
    from {{ ref('stg_deribit__option_trades') }}
    where {{ options_window_filter('hour') }}
),

-- one price per side, strike and millisecond (the volume-weighted price of trades sharing a
-- millisecond), so that the as-of pairing below is deterministic
sides as (
    select
        hour, expiry, strike, option_type, "timestamp",
        sum(price * amount) / sum(amount) as price,
        avg(index_price) as index_price
    from trades
    where amount > 0
    group by all
),

calls as (select * from sides where option_type = 'C'),

puts as (select * from sides where option_type = 'P'),

parity_pairs as (
    select
        p.hour, p.expiry, p.strike, c.price as call_price, p.price as put_price,
        p.index_price
    from puts as p
    asof join calls as c
        on p.hour = c.hour and p.expiry = c.expiry and p.strike = c.strike
        and p."timestamp" >= c."timestamp"
    where epoch_ms(p."timestamp") - epoch_ms(c."timestamp") <= 300000
    union all
    select
        c.hour, c.expiry, c.strike, c.price as call_price, p.price as put_price,
        c.index_price
    from calls as c
    asof join puts as p
        on c.hour = p.hour and c.expiry = p.expiry and c.strike = p.strike
        and c."timestamp" >= p."timestamp"
    where epoch_ms(c."timestamp") - epoch_ms(p."timestamp") <= 300000
),

forwards as (
    select
        hour,
        expiry,
        median(
            strike::double / (1 - (call_price - put_price)::double) / index_price::double
        ) as forward_ratio,
        count(*)::bigint as parity_pairs
    from parity_pairs
    where call_price - put_price < 1
    group by hour, expiry
),

-- the trades that can give the forward they were priced on (step 1)
implied_inputs as (
    select
        trade_id,
        hour,
        expiry,
        case when option_type = 'C' then 1 else -1 end as slope,  -- the sign of dg/dF
        strike::double as k,
        price::double as p,
        index_price::double as index_price,
        time_to_expiry_years as t,
        sigma
    from trades
    where sigma > 0 and price > 0 and time_to_expiry_years > 0
),

-- g(F) = B76(F, K, T, sigma) / F - price rises with F for a call (dg/dF = K N(d2) / F^2)
-- and falls for a put (-K N(-d2) / F^2): each step keeps the half where g changes sign
bisection as (
    select trade_id, 0 as step, index_price * 0.5 as lo, index_price * 2.0 as hi
    from implied_inputs
    union all
    select
        trade_id,
        step + 1,
        case when g * slope < 0 then mid else lo end,
        case when g * slope < 0 then hi else mid end
    from (
        select
            *,
            {{ black76_value('slope = 1', 'mid', 'k', 'n_d1', 'n_d2') }} / mid - p as g
        from (
            select
                *,
                {{ std_normal_cdf('d1') }} as n_d1,
                {{ std_normal_cdf('d1 - sigma * sqrt(t)') }} as n_d2
            from (
                select
                    b.trade_id, b.step, b.lo, b.hi, (b.lo + b.hi) / 2 as mid,
                    i.slope, i.k, i.p, i.t, i.sigma,
                    {{ black76_d1('(b.lo + b.hi) / 2', 'i.k', 'i.t', 'i.sigma') }} as d1
                from bisection as b
                inner join implied_inputs as i on i.trade_id = b.trade_id
                where b.step < 50
            )
        )
    )
),

implied_forwards as (
    select
        i.hour,
        i.expiry,
        median(b.forward / i.index_price) as forward_ratio
    from (select trade_id, (lo + hi) / 2 as forward from bisection where step = 50) as b
    inner join implied_inputs as i on i.trade_id = b.trade_id
    -- a root at an end of the bracket is none inside it
    where b.forward > i.index_price * 0.5001 and b.forward < i.index_price * 1.9999
    group by i.hour, i.expiry
),

inputs as (
    select
        t.*,
        t.index_price::double * coalesce(im.forward_ratio, f.forward_ratio, 1.0)
            as forward_price,
        case
            when im.forward_ratio is not null then 'trade_iv'
            when f.forward_ratio is not null then 'put_call_parity'
            else 'index'
        end as forward_source,
        coalesce(f.parity_pairs, 0) as parity_pairs
    from trades as t
    left join forwards as f on f.hour = t.hour and f.expiry = t.expiry
    left join implied_forwards as im on im.hour = t.hour and im.expiry = t.expiry
),

with_d1 as (
    select
        *,
        case when time_to_expiry_years > 0 and sigma > 0 then
            {{ black76_d1('forward_price', 'strike::double', 'time_to_expiry_years', 'sigma') }}
        end as d1
    from inputs
),

with_d2 as (
    select *, d1 - sigma * sqrt(time_to_expiry_years) as d2 from with_d1
),

with_n as (
    select
        *,
        {{ std_normal_cdf('d1') }} as n_d1,
        {{ std_normal_cdf('d2') }} as n_d2,
        {{ std_normal_pdf('d1') }} as pdf_d1
    from with_d2
)

select
    trade_id,
    "timestamp",
    hour,
    instrument_name,
    expiry,
    strike,
    option_type,
    direction,
    amount,
    price,
    iv,
    index_price,
    block_trade_id,
    forward_price,
    forward_source,
    parity_pairs,
    time_to_expiry_years,
    {{ black76_value("option_type = 'C'", 'forward_price', 'strike::double', 'n_d1', 'n_d2') }}
        / forward_price as model_price,
    {{ black76_delta("option_type = 'C'", 'n_d1') }} as delta,
    case when option_type = 'C'
        then strike::double / forward_price * n_d2
        else -strike::double / forward_price * (1 - n_d2)
    end as delta_premium_adjusted,
    pdf_d1 / (forward_price * sigma * sqrt(time_to_expiry_years)) as gamma,
    forward_price * pdf_d1 * sqrt(time_to_expiry_years) / 100 as vega,
    -forward_price * pdf_d1 * sigma / (2 * sqrt(time_to_expiry_years)) / 365 as theta
from with_n
