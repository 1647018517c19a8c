{#- An hourly variance as an annualized volatility: sqrt(variance * 365 * 24), a decimal (0.45 =
    45 %). NULL where the variance is NULL or negative (a range-based estimator can be). -#}
{% macro annualized_volatility(variance) -%}
    case when ({{ variance }}) >= 0 then sqrt(({{ variance }}) * 8760) end
{%- endmacro %}
