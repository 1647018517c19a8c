{{ config(materialized='view', tags=['utc_daily']) }}
-- One row per (source, instrument, funding_date) of funding_rates_daily: the carry a perp
-- position paid, annualized, per UTC day and over the 7 and 30 days ending with it. The sign
-- is Hyperliquid's: positive, longs pay shorts. A day counts only if its events cover 24
-- hours; a window is reported only when every one of its days is there and complete (NULL
-- otherwise), so a partial day never dilutes an average silently. A view over the daily
-- mart: always consistent with it.

with daily as (
    select
        source,
        instrument,
        funding_date,
        funding_rate_sum,
        hours_covered = 24 as is_complete,
        case when hours_covered = 24 then funding_rate_sum end as complete_rate_sum
    from {{ ref('funding_rates_daily') }}
)

select
    source,
    instrument,
    funding_date,
    funding_rate_sum,
    is_complete,
    complete_rate_sum * 365 as carry_annualized,
    {%- for days in [7, 30] %}
    count(complete_rate_sum) over w{{ days }} as complete_days_{{ days }}d,
    case
        when count(complete_rate_sum) over w{{ days }} = {{ days }}
        then sum(complete_rate_sum) over w{{ days }} * 365 / {{ days }}
    end as carry_annualized_{{ days }}d{{ ',' if not loop.last }}
    {%- endfor %}
from daily
window
    w7 as (
        partition by source, instrument
        order by funding_date
        range between interval 6 day preceding and current row
    ),
    w30 as (
        partition by source, instrument
        order by funding_date
        range between interval 29 day preceding and current row
    )
