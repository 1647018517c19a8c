{#- The incremental strategy 'window' (config incremental_strategy='window', with meta
    window_column, the model's timestamp column the window is on, and window_family,
    'session' or 'options', which of the run's windows: macros/sessions.sql, options.sql):
    the rows of the run's window are deleted and the model's rows, all inside it, inserted,
    in the model's transaction. dbt's delete+insert deletes only the keys it inserts again,
    so a row whose key a re-run no longer makes stayed: a trade withdrawn in a re-pull, an
    option contract no longer chosen for its day, and after a change of the anchor hour or
    weekday every session of the old calendar. One range delete also costs less than
    matching every key. With no window (a full rebuild, or dbt by hand) it is delete+insert
    on the model's unique_key. -#}
{% macro get_incremental_window_sql(arg_dict) -%}
    {%- set meta = config.get('meta') or {} -%}
    {%- set column = meta.get('window_column') -%}
    {%- set family = meta.get('window_family') -%}
    {%- if column is none or family not in ('session', 'options') -%}
        {{ exceptions.raise_compiler_error(
            "incremental_strategy 'window' needs meta window_column and window_family "
            ~ "('session' or 'options'), got " ~ column ~ " and " ~ family) }}
    {%- endif -%}
    {%- set lo, hi = session_window() if family == 'session' else options_window() -%}
    {%- if lo is none or hi is none -%}
        {{ return(get_incremental_delete_insert_sql(arg_dict)) }}
    {%- endif -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ arg_dict['target_relation'] }}
    where {{ session_window_filter(column) if family == 'session' else options_window_filter(column) }};

    insert into {{ arg_dict['target_relation'] }} ({{ columns }})
    (select {{ columns }} from {{ arg_dict['temp_relation'] }})
{%- endmacro %}
