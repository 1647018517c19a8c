{{ config(materialized='view', tags=['session_daily']) }}
-- One row per (source, instrument, session_start) of realized_volatility_daily: each
-- estimator over the 7, 30 and 90 daily sessions ending with this one, as the square root
-- of the mean of the daily variances (the variance of a sum of independent days is the sum
-- of their variances). Only complete sessions count, and a window is reported only when
-- every one of its sessions is there and complete (NULL otherwise): an incomplete day is
-- never mixed in silently. A view over the daily mart: always consistent with it.

with daily as (
    select
        session_start,
        source,
        instrument,
        is_complete,
        {%- for estimator in ['close_to_close', 'parkinson', 'garman_klass', 'rogers_satchell', 'yang_zhang'] %}
        case when is_complete then rv_{{ estimator }} * rv_{{ estimator }} end
            as variance_{{ estimator }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ ref('realized_volatility_daily') }}
)

select
    session_start,
    source,
    instrument,
    {%- for days in [7, 30, 90] %}
    count(*) filter (where is_complete) over w{{ days }} as complete_sessions_{{ days }}d,
    {%- for estimator in ['close_to_close', 'parkinson', 'garman_klass', 'rogers_satchell', 'yang_zhang'] %}
    case
        when count(variance_{{ estimator }}) over w{{ days }} = {{ days }}
        then sqrt(avg(variance_{{ estimator }}) over w{{ days }})
    end as rv_{{ estimator }}_{{ days }}d{{ ',' if not (loop.last and days == 90) }}
    {%- endfor %}
    {%- endfor %}
from daily
window
    {%- for days in [7, 30, 90] %}
    w{{ days }} as (
        partition by source, instrument
        order by session_start
        range between interval {{ days - 1 }} day preceding and current row
    ){{ ',' if not loop.last }}
    {%- endfor %}
