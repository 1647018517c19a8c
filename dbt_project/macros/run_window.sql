{#- A run's window [lo, hi): (lo, hi), each an ISO 8601 UTC timestamp string or none. The dbt
    var lo_var (hi_var) wins, from --vars or a unit test; else the environment variable
    lo_env (hi_env) that Dagster sets for a partition run (mkt_platform/lib/dbt.py,
    WINDOW_ENV). Used by session_window (macros/sessions.sql) and options_window
    (macros/options.sql).

    Read when dbt executes a node, not while it parses: an environment variable read while
    parsing is recorded in dbt's saved parse, and every run (each with its own window) would
    re-parse each model that reads it. The window adds filters, never a ref or a config, so
    the parse needs none. -#}
{% macro run_window(lo_var, lo_env, hi_var, hi_env) -%}
    {%- if not execute -%}
        {{ return((none, none)) }}
    {%- endif -%}
    {%- set lo = var(lo_var, env_var(lo_env, '')) -%}
    {%- set hi = var(hi_var, env_var(hi_env, '')) -%}
    {{ return((lo if lo else none, hi if hi else none)) }}
{%- endmacro %}
