{#- Session calendar of the options market. The anchor hour is a setting of the platform
    (env MKT_SESSION_ANCHOR_HOUR, read in mkt_platform/settings.py); Dagster passes it to
    every dbt run as the var session_anchor_hour. The env fallback serves a person running
    dbt by hand, with the same default (tests/test_settings.py keeps the two equal). -#}
{% macro session_anchor_hour() -%}
    {{ var('session_anchor_hour', env_var('MKT_SESSION_ANCHOR_HOUR', '8')) | int }}
{%- endmacro %}

{#- Start of the daily session containing ts (a UTC timestamptz): the latest anchor hour
    at or before ts. -#}
{% macro daily_session_start(ts) -%}
    (date_trunc('day', {{ ts }} - interval ({{ session_anchor_hour() }}) hour)
        + interval ({{ session_anchor_hour() }}) hour)
{%- endmacro %}

{#- The session window of this run, [session_start_min, session_start_max), each an ISO UTC
    timestamp string or none. Dagster sets it in the environment (MKT_DBT_SESSION_START_MIN,
    MKT_DBT_SESSION_START_MAX: dbt keeps its saved parse when an environment variable changes,
    not when --vars do); a var of the same name, from --vars or a unit test, wins. -#}
{% macro session_window() -%}
    {{ return(run_window('session_start_min', 'MKT_DBT_SESSION_START_MIN', 'session_start_max', 'MKT_DBT_SESSION_START_MAX')) }}
{%- endmacro %}

{#- Half-open filter on a timestamp column for the session window of this run:
    session_start_min <= col < session_start_max. No filter when the window is unset. -#}
{% macro session_window_filter(column) -%}
    {%- set lo, hi = session_window() -%}
    {%- if lo is not none and hi is not none -%}
    {{ column }} >= timestamptz '{{ lo }}'
    and {{ column }} < timestamptz '{{ hi }}'
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}

{#- (value - base) / base * 100, rounded half away from zero to 4 decimals, computed exactly.
    DuckDB divides DECIMALs in DOUBLE, which can round the 4th decimal wrongly; here the
    DECIMAL(38,8) inputs are scaled to integers and divided in HUGEINT. base must be > 0. -#}
{% macro pct_change_4dp(value, base) -%}
    {#- n, d: the DECIMAL(38,8) change and base as integers of 1e-8 (exact). -#}
    {%- set n -%}((({{ value }}) - ({{ base }})) * 100000000)::hugeint{%- endset -%}
    {%- set d -%}(({{ base }}) * 100000000)::hugeint{%- endset -%}
    {#- round(n / d * 1e6) half away from zero = sign(n) * floor((2|n| * 1e6 + d) / 2d) -#}
    ((sign({{ n }})::hugeint * ((abs({{ n }}) * 2000000 + {{ d }}) // (2 * {{ d }})))::decimal(38, 0)
        * 0.0001)
{%- endmacro %}

{#- The derived columns of a session row, from its open, high, low and close: move, the exact
    4-dp percent changes, and the exact absolute moves (same denominator) that decide chmax and
    the first extremum without rounding. Used by the daily mart and the weekly/monthly rollup. -#}
{% macro session_changes() -%}
        high - low as move,
        {{ pct_change_4dp('high', 'open') }} as chhigh,
        {{ pct_change_4dp('low', 'open') }} as chlow,
        {{ pct_change_4dp('close', 'open') }} as chclose,
        high - open as up_move,
        open - low as down_move
{%- endmacro %}
