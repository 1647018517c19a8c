{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['source', 'instrument', 'snapshot_time'],
        on_schema_change='fail',
        tags=['utc_daily'],
    )
}}
-- One row per (source, instrument, snapshot_time) of the order-book snapshots: the best bid
-- and ask, the mid ((bid + ask) / 2, exact), the spread, and the depth resting within 0.1 %,
-- 0.5 % and 1 % of the mid on each side: the sum of the quantities (base currency) and of
-- price * quantity (quote currency) of the bid levels priced at or above mid * (1 - band)
-- and of the ask levels priced at or below mid * (1 + band), all exact DECIMAL sums.
-- Only two-sided books (a best bid and a best ask) have a row.
-- Incremental over the run's UTC days (the options hour window); with no window, every day.

with best as (
    select
        source,
        instrument,
        snapshot_time,
        max(last_update_id) as last_update_id,
        max(price) filter (where side = 'bid' and level = 1) as best_bid,
        max(price) filter (where side = 'ask' and level = 1) as best_ask,
        count(*) filter (where side = 'bid') as bid_levels,
        count(*) filter (where side = 'ask') as ask_levels
    from {{ ref('stg_binance__order_book') }}
    where {{ options_window_filter('snapshot_time') }}
    group by source, instrument, snapshot_time
),

books as (
    select
        *,
        -- times 0.5, not / 2: DuckDB divides a DECIMAL into a DOUBLE
        (best_bid + best_ask) * 0.5 as mid_price
    from best
    where best_bid is not null and best_ask is not null
)

select
    b.source,
    b.instrument,
    b.snapshot_time,
    b.last_update_id,
    b.best_bid,
    b.best_ask,
    b.mid_price,
    b.best_ask - b.best_bid as spread,
    ((b.best_ask - b.best_bid) / b.mid_price * 10000)::double as spread_bps,
    b.bid_levels,
    b.ask_levels,
    {%- for band, name in [('0.001', '10bps'), ('0.005', '50bps'), ('0.01', '100bps')] %}
    coalesce(sum(l.quantity) filter (
        where l.side = 'bid' and l.price >= b.mid_price * (1 - {{ band }})
    ), 0) as bid_depth_{{ name }},
    coalesce(sum(l.quantity) filter (
        where l.side = 'ask' and l.price <= b.mid_price * (1 + {{ band }})
    ), 0) as ask_depth_{{ name }},
    coalesce(sum(l.price * l.quantity) filter (
        where l.side = 'bid' and l.price >= b.mid_price * (1 - {{ band }})
    ), 0) as bid_depth_{{ name }}_quote,
    coalesce(sum(l.price * l.quantity) filter (
        where l.side = 'ask' and l.price <= b.mid_price * (1 + {{ band }})
    ), 0) as ask_depth_{{ name }}_quote{{ ',' if not loop.last }}
    {%- endfor %}
from books as b
inner join {{ ref('stg_binance__order_book') }} as l
    on l.instrument = b.instrument and l.snapshot_time = b.snapshot_time
group by all
