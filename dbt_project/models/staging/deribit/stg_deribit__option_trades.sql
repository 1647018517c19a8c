{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='trade_id',
        on_schema_change='fail',
        pre_hook="{{ delete_lake_window() }}",
    )
}}
-- One row per trade_id: Deribit BTC option trades from the lake, typed as the lake contract
-- says (prices DECIMAL(38,8) in BTC, index and strike DECIMAL(38,8) in USD, times UTC) and
-- deduplicated on trade_id. A trade in two partition files can only come from a faulty pull;
-- the copy in the partition of the trade's own UTC date wins, else the newest partition.
-- (Within one file trades are unique by contract; a breach fails the unique test.)
-- Adds hour (start of the trade's UTC hour) and partition_date (the hive `date`).
-- A table, incremental over the run's window: a partition run reads only the lake files of
-- its window (lake_partition_filter) and replaces those trades, and the table keeps the
-- history, so an options mart built in a later run reads its own window's trades. (As a
-- view it held the window of whichever run built it last.)
-- With no lake file yet (deribit never pulled) this is an empty relation of the same columns
-- and types, so the marts build empty instead of failing on an empty glob.
-- depends_on: {{ source('lake_deribit', 'deribit_option_trades') }}

{%- set has_files = lake_has_files('deribit', 'option_trades') %}

with
{%- if has_files %}
-- files written before block_trade_id and liquidation were stored lack those columns: the
-- union by name gives them nulls there (and union_by_name in the source, when some files
-- have them and some do not)
files as not materialized (
    select *
    from {{ source('lake_deribit', 'deribit_option_trades') }}
    -- only the files of the run's window (all of them when no window is set)
    where {{ lake_partition_filter('"date"') }}
    union all by name
    select null::varchar as block_trade_id, null::varchar as liquidation
    where false
),
{%- endif %}

raw as not materialized (
{%- if has_files %}
    select
        trade_id::varchar as trade_id,
        trade_seq::bigint as trade_seq,
        "timestamp"::timestamptz as "timestamp",
        instrument_name::varchar as instrument_name,
        direction::varchar as direction,
        price::decimal(38, 8) as price,
        amount::decimal(38, 8) as amount,
        iv::double as iv,
        mark_price::double as mark_price,
        index_price::decimal(38, 8) as index_price,
        tick_direction::integer as tick_direction,
        expiry::timestamptz as expiry,
        strike::decimal(38, 8) as strike,
        option_type::varchar as option_type,
        block_trade_id::varchar as block_trade_id,
        liquidation::varchar as liquidation,
        "date"::date as partition_date
    from files
{%- else %}
    select
        null::varchar as trade_id,
        null::bigint as trade_seq,
        null::timestamptz as "timestamp",
        null::varchar as instrument_name,
        null::varchar as direction,
        null::decimal(38, 8) as price,
        null::decimal(38, 8) as amount,
        null::double as iv,
        null::double as mark_price,
        null::decimal(38, 8) as index_price,
        null::integer as tick_direction,
        null::timestamptz as expiry,
        null::decimal(38, 8) as strike,
        null::varchar as option_type,
        null::varchar as block_trade_id,
        null::varchar as liquidation,
        null::date as partition_date
    where false
{%- endif %}
),

-- Set-based dedupe that keeps the common case (every trade in its own day's file, no
-- duplicate) a plain scan of the window's Parquet files:
-- own: rows in the partition of their own UTC date (unique, one file per date);
-- misplaced: rows in another partition, kept only when no own copy exists (newest first).
own as (
    select *
    from raw
    where {{ is_own_partition('partition_date', '"timestamp"') }}
),

misplaced as (
    select *
    from raw
    where not coalesce({{ is_own_partition('partition_date', '"timestamp"') }}, false)
),

-- misplaced trades that also have an own copy. Written as misplaced semi join own so that
-- DuckDB hashes the (normally empty) misplaced side and skips the scan of own entirely.
owned_ids as (
    select misplaced.trade_id
    from misplaced
    semi join own on own.trade_id = misplaced.trade_id
),

deduplicated as (
    select * from own
    union all
    (
        select misplaced.*
        from misplaced
        anti join owned_ids on owned_ids.trade_id = misplaced.trade_id
        qualify row_number() over (
            partition by misplaced.trade_id order by misplaced.partition_date desc
        ) = 1
    )
)

select
    trade_id,
    trade_seq,
    "timestamp",
    instrument_name,
    direction,
    price,
    amount,
    iv,
    mark_price,
    index_price,
    tick_direction,
    expiry,
    strike,
    option_type,
    block_trade_id,
    liquidation,
    {{ utc_hour('"timestamp"') }} as hour,
    partition_date
from deduplicated
