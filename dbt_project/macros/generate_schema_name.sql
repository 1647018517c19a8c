{#- Schemas are named by layer (staging, intermediate, marts), not prefixed by the target
    schema, so that people query marts.session_ohlc_daily. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name if custom_schema_name is not none else target.schema }}
{%- endmacro %}
