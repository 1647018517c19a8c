{{ config(materialized='view', tags=['utc_daily']) }}
-- One row per (currency, day) of dvol_daily: implied volatility against realized, the
-- volatility risk premium. Conventions (the yml says the same):
--   * implied = DVOL's close of the UTC day (the value at 24:00 UTC), as a decimal;
--   * realized = close-to-close realized volatility of the currency's Binance spot pair
--     (BTCUSDT for BTC, ETHUSDT for ETH) from realized_volatility_rolling, over 30 complete
--     daily sessions (08:00 to 08:00 UTC), each window reported only when all 30 are there
--     and complete (NULL otherwise);
--   * trailing = the 30 sessions ending by the close (with the default 08:00 anchor: ending
--     at the day's 08:00); forward = the 30 sessions from the first one starting at or
--     after the close (08:00 the next day), NULL until they have happened;
--   * premium = implied - realized (decimal volatility: 0.05 = 5 vol points), and the
--     variance premium implied^2 - realized^2;
--   * atm_iv_30d: the options marts' own 30-day ATM implied volatility
--     (option_term_structure_hourly, maturity 30) at the day's last hour that has one, as a
--     decimal, for BTC (the options marts hold Deribit's BTC options); NULL where the
--     day's trades do not bracket 30 days; with its premiums over realized.

with implied as (
    select currency, day, close / 100.0 as implied_volatility
    from {{ ref('dvol_daily') }}
),

options_atm as (
    select
        date '1970-01-01' + (epoch_ms(hour) // 86400000)::integer as day,
        arg_max(atm_iv, hour) / 100.0 as atm_iv_30d
    from {{ ref_if_built(
        'option_term_structure_hourly',
        'select null::timestamptz as hour, null::integer as maturity_days, '
        ~ 'null::double as atm_iv where false') }}
    where maturity_days = 30 and atm_iv is not null
    group by 1
),

realized as (
    select
        instrument,
        session_start,
        rv_close_to_close_30d,
        complete_sessions_30d
    from {{ ref('realized_volatility_rolling') }}
    where source = 'binance'
)

select
    i.currency,
    i.day,
    i.implied_volatility,
    i.currency || 'USDT' as realized_instrument,
    past.rv_close_to_close_30d as realized_volatility_trailing_30d,
    future.rv_close_to_close_30d as realized_volatility_forward_30d,
    i.implied_volatility - past.rv_close_to_close_30d as premium_trailing_30d,
    i.implied_volatility - future.rv_close_to_close_30d as premium_forward_30d,
    i.implied_volatility * i.implied_volatility
        - past.rv_close_to_close_30d * past.rv_close_to_close_30d
        as variance_premium_trailing_30d,
    i.implied_volatility * i.implied_volatility
        - future.rv_close_to_close_30d * future.rv_close_to_close_30d
        as variance_premium_forward_30d,
    o.atm_iv_30d,
    o.atm_iv_30d - past.rv_close_to_close_30d as atm_premium_trailing_30d,
    o.atm_iv_30d - future.rv_close_to_close_30d as atm_premium_forward_30d
from implied as i
left join options_atm as o on i.currency = 'BTC' and o.day = i.day
-- trailing: the rolling row of the last session ending by the close (day + 1 at 00:00),
-- which starts at the session start containing the day's 00:00; forward: the first session
-- starting at or after the close, S, and the rolling row 29 sessions later (S + 29 days)
left join realized as past
    on past.instrument = i.currency || 'USDT'
    and past.session_start = {{ daily_session_start('i.day::timestamptz') }}
left join realized as future
    on future.instrument = i.currency || 'USDT'
    and future.session_start = {{ daily_session_start(
        "(i.day + interval 2 day - interval 1 millisecond)::timestamptz") }} + interval 29 day
