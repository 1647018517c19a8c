{#- The options hour window of this run, [options_hour_min, options_hour_max), each an ISO
    UTC timestamp string (e.g. '2022-01-01T00:00:00+00:00') or none. Dagster sets it in the
    environment (MKT_DBT_OPTIONS_HOUR_MIN, MKT_DBT_OPTIONS_HOUR_MAX: dbt keeps its saved parse
    when an environment variable changes, not when --vars do); a var of the same name, from
    --vars or a unit test, wins. -#}
{% macro options_window() -%}
    {{ return(run_window('options_hour_min', 'MKT_DBT_OPTIONS_HOUR_MIN', 'options_hour_max', 'MKT_DBT_OPTIONS_HOUR_MAX')) }}
{%- endmacro %}

{#- Half-open filter on an hour column for the options window of this run:
    options_hour_min <= column < options_hour_max. A bound left unset does not filter, so
    with neither set the incremental options marts rebuild everything. -#}
{% macro options_window_filter(column) -%}
    {%- set lo, hi = options_window() -%}
    {%- if lo is not none -%}
    {{ column }} >= timestamptz '{{ lo }}'
    {%- else -%}
    true
    {%- endif %}
    and {% if hi is not none -%}
    {{ column }} < timestamptz '{{ hi }}'
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}

{#- Start of the UTC hour containing ts (a timestamptz), computed on the epoch so that it
    does not depend on the session TimeZone (date_trunc on a timestamptz truncates in the
    session time zone, which for a zone with a half-hour offset is not the UTC hour). -#}
{% macro utc_hour(ts) -%}
    to_timestamp((epoch_ms({{ ts }}) // 3600000) * 3600)
{%- endmacro %}

{#- Whole hours from hour_start to expiry, rounded up, and at least 1: an option in its last
    (partial) hour before expiry counts 1 hour, never 0 or negative. Deribit expiries are at
    08:00 UTC, so from an hour start the difference is a whole number and nothing rounds. -#}
{% macro hours_to_expiry(hour_start, expiry) -%}
    greatest(1, ceil((epoch_ms({{ expiry }}) - epoch_ms({{ hour_start }})) / 3600000.0))::integer
{%- endmacro %}

{#- A USD amount computed exactly in DECIMAL, rounded half away from zero to 8 decimals. -#}
{% macro usd_8dp(expr) -%}
    ({{ expr }})::decimal(38, 8)
{%- endmacro %}

{#- A HUGEINT that orders an instrument's trades as (timestamp, trade_seq): the epoch
    milliseconds in the high 64 bits, trade_seq (a non-negative BIGINT) in the low 64 bits.
    Same order as the struct (timestamp, trade_seq), but arg_min/arg_max compare it several
    times faster. -#}
{% macro trade_order_key(ts, seq) -%}
    (epoch_ms({{ ts }})::hugeint * 18446744073709551616 + {{ seq }})
{%- endmacro %}

{#- The tie-breaker of an instrument's trades within one millisecond: trade_seq, or where
    the recording has none (Amberdata's 2024-04-01) Deribit's numeric trade_id, which it
    assigns in matching order (0 if neither: the order is then arbitrary). -#}
{% macro trade_tiebreak(seq, trade_id) -%}
    coalesce({{ seq }}, try_cast({{ trade_id }} as bigint), 0)
{%- endmacro %}

{#- True when partition_date is the UTC date of ts (a timestamptz), in integer day numbers:
    much cheaper than a time zone conversion, and independent of the session TimeZone. -#}
{% macro is_own_partition(partition_date, ts) -%}
    (({{ partition_date }} - date '1970-01-01') = epoch_ms({{ ts }}) // 86400000)
{%- endmacro %}

{#- ref(model_name), or where that relation does not exist yet (a plan that built another
    dataset's marts only) the subquery empty_sql, an empty relation of the same columns. The
    ref is always taken, so dbt and Dagster keep the dependency, and the model is built again
    whenever that mart is (it is downstream of it). -#}
{% macro ref_if_built(model_name, empty_sql) -%}
    {%- set relation = ref(model_name) -%}
    {%- if execute and load_relation(relation) is none -%}
    ({{ empty_sql }})
    {%- else -%}
    {{ relation }}
    {%- endif -%}
{%- endmacro %}
