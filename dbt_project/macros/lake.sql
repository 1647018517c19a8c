{#- The raw Parquet lake, as written by the Dagster raw assets:
    $MKT_DATA_DIR/lake/raw/<source>/<dataset>/date=YYYY-MM-DD/part.parquet, or
    MKT_LAKE_URL/raw/... (s3://bucket/prefix/raw/...) when the lake is on S3. Its root is the
    DuckDB variable mkt_lake, which the profile's plugin sets on every connection from the
    environment (mkt_platform/lib/dbt_duckdb_offline.py), so no model or source reads the
    environment while dbt parses, and the saved parse serves every data directory. This
    macro gives the SQL expression of a dataset's files (as the sources' external_location
    spell it). -#}
{% macro lake_glob(source_name, dataset, files='date=*/part.parquet') -%}
    getvariable('mkt_lake') || '/raw/{{ source_name }}/{{ dataset }}/{{ files }}'
{%- endmacro %}

{#- True when at least one partition file of the dataset exists. A venue that has never been
    pulled has no file, and DuckDB's read_parquet fails on an empty glob; staging models use
    this to read as an empty relation instead, so one venue not pulled yet never breaks the
    models that union every venue. At parse time (no execution) it answers true. -#}
{% macro lake_has_files(source_name, dataset, files='date=*/part.parquet') -%}
    {%- if not execute -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set result = run_query("select count(*) from glob(" ~ lake_glob(source_name, dataset, files) ~ ")") -%}
    {{ return(result.columns[0].values()[0] > 0) }}
{%- endmacro %}

{#- The window whose lake files a run reads: the session window (macros/sessions.sql) or the
    options hour window (macros/options.sql), whichever is set, as (lo, hi); (none, none)
    without one. -#}
{% macro lake_window() -%}
    {%- set lo, hi = session_window() -%}
    {%- if lo is none or hi is none -%}
        {%- set lo, hi = options_window() -%}
    {%- endif -%}
    {{ return((lo, hi)) }}
{%- endmacro %}

{#- Filter on a lake partition column (the hive `date`, a UTC date) to the days this run's
    window overlaps, so that DuckDB opens only those files (hive partition pruning) instead of
    every file of the lake before the dedupe: a one-day build reads one or two days of files
    however large the lake. The window is the session window (macros/sessions.sql) or the
    options hour window (macros/options.sql), whichever is set. A row lies in the file of its
    own UTC day (the raw checks refuse a candle outside its partition before it is written;
    a Deribit trade in another day's file, which only a faulty pull could cause, is seen by
    the runs whose window covers that file). pad_days widens the days on each side, for a
    model that needs its neighbours (the funding interval is read from the previous and the
    next event). With no window (a full rebuild, or dbt by hand) it filters nothing. -#}
{% macro lake_partition_filter(column, pad_days=0) -%}
    {%- set lo, hi = lake_window() -%}
    {%- if lo is not none and hi is not none -%}
        {%- set dt = modules.datetime -%}
        {%- set utc = modules.pytz.utc -%}
        {%- set pad = dt.timedelta(days=pad_days) -%}
        {%- set first = dt.datetime.fromisoformat(lo).astimezone(utc).date() - pad -%}
        {%- set last = (dt.datetime.fromisoformat(hi).astimezone(utc) - dt.timedelta(microseconds=1)).date() + pad -%}
    {{ column }} between date '{{ first.isoformat() }}' and date '{{ last.isoformat() }}'
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}

{#- The pre-hook of a staging table built from the lake files of the run's window: its rows
    from those files (column: the hive `date` each row came from) deleted, in the model's
    transaction, before the files are read again, so that a row withdrawn from a re-pulled
    file leaves the table too (delete+insert alone deletes only the keys it inserts again).
    Nothing on a first build, a full refresh or a run without a window. -#}
{% macro delete_lake_window(column='partition_date') -%}
    {%- set lo, hi = lake_window() -%}
    {%- if execute and is_incremental() and lo is not none and hi is not none -%}
    delete from {{ this }} where {{ lake_partition_filter(column) }}
    {%- endif -%}
{%- endmacro %}

{#- An empty relation with the columns of the 1m candle staging models (REST and stream),
    for a dataset with no file in the lake yet. -#}
{% macro empty_candles_1m() -%}
select
    'hyperliquid' as source,
    cast(null as varchar) as instrument,
    cast(null as timestamptz) as open_time,
    cast(null as timestamptz) as close_time,
    cast(null as decimal(38, 8)) as open,
    cast(null as decimal(38, 8)) as high,
    cast(null as decimal(38, 8)) as low,
    cast(null as decimal(38, 8)) as close,
    cast(null as decimal(38, 8)) as volume,
    cast(null as bigint) as trades,
    cast(null as date) as partition_date
where false
{%- endmacro %}

{#- The 1m candle staging rows (REST and stream share their columns) of a lake relation,
    only the files of the run's window (all of them when no window is set). -#}
{% macro hyperliquid_candles_1m_rows(relation) -%}
select
    'hyperliquid' as source,
    coin as instrument,
    open_time,
    close_time,
    open,
    high,
    low,
    close,
    volume,
    trades,
    date as partition_date
from {{ relation }}
where {{ lake_partition_filter('date') }}
{%- endmacro %}

{#- An empty relation with the columns of the Polygon minute-bar staging models, for a
    dataset with no file in the lake yet. -#}
{% macro empty_polygon_aggs() -%}
select
    'polygon' as source,
    cast(null as varchar) as ticker,
    cast(null as timestamptz) as bar_time,
    cast(null as decimal(38, 8)) as open,
    cast(null as decimal(38, 8)) as high,
    cast(null as decimal(38, 8)) as low,
    cast(null as decimal(38, 8)) as close,
    cast(null as decimal(38, 8)) as volume,
    cast(null as decimal(38, 8)) as vwap,
    cast(null as bigint) as transactions,
    cast(null as date) as partition_date
where false
{%- endmacro %}
