{#- The raw Parquet lake, as written by the Dagster raw assets:
    $MKT_DATA_DIR/lake/raw/<source>/<dataset>/date=YYYY-MM-DD/part.parquet -#}
{% macro lake_glob(source_name, dataset) -%}
    {{ env_var('MKT_DATA_DIR', '../data') }}/lake/raw/{{ source_name }}/{{ dataset }}/date=*/part.parquet
{%- endmacro %}

{#- True when at least one partition file of the dataset exists. A venue that has never been
    pulled has no file, and DuckDB's read_parquet fails on an empty glob; staging models use
    this to read as an empty relation instead, so one venue not pulled yet never breaks the
    models that union every venue. At parse time (no execution) it answers true. -#}
{% macro lake_has_files(source_name, dataset) -%}
    {%- if not execute -%}
        {{ return(true) }}
    {%- endif -%}
    {%- set result = run_query("select count(*) from glob('" ~ lake_glob(source_name, dataset) ~ "')") -%}
    {{ return(result.columns[0].values()[0] > 0) }}
{%- endmacro %}
