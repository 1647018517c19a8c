{#- The data tests of a partition run check the rows of the run's window only.

    dbt renders every data test over `get_where_subquery(relation)`; this project's version
    of that macro (it overrides dbt's own, as dbt documents for a computed `where`) adds the
    run's window when the tested model declares the column its partition window filters on
    (`meta.partition_expr`: session_start, hour, funding_date) and the run has a window (the
    session window of macros/sessions.sql, else the options hour window of
    macros/options.sql). The rows outside the window were tested by the run that built them,
    and this run did not touch them: re-testing the whole mart on every partition run made
    the tests' cost grow with the mart. A test's own `where` still applies, and without a
    window (dbt by hand, a full rebuild) every row is tested, as before. -#}
{% macro get_where_subquery(relation) -%}
    {%- set filters = [] -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- do filters.append('(' ~ where ~ ')') -%}
    {%- endif -%}
    {%- set window = test_window_filter() -%}
    {%- if window -%}
        {%- do filters.append(window) -%}
    {%- endif -%}
    {%- if filters -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ filters | join(' and ') }}) dbt_subquery
        {%- endset -%}
        {{ return(filtered) }}
    {%- else -%}
        {{ return(relation) }}
    {%- endif -%}
{%- endmacro %}

{#- The window filter of the model this test is attached to, or '' when it has none. -#}
{% macro test_window_filter() -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {#- A list: a variable set inside a Jinja loop does not outlive it. -#}
    {%- set columns = [] -%}
    {%- for node_id in model.depends_on.nodes if node_id.startswith('model.') -%}
        {%- set node = graph.nodes.get(node_id) -%}
        {%- if node is not none and (node.config.meta or {}).get('partition_expr') -%}
            {%- do columns.append(node.config.meta['partition_expr']) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if columns | length != 1 -%}
        {{ return('') }}
    {%- endif -%}
    {%- set column = columns[0] -%}
    {%- set lo, hi = session_window() -%}
    {%- if lo is none or hi is none -%}
        {%- set lo, hi = options_window() -%}
    {%- endif -%}
    {%- if lo is none or hi is none -%}
        {{ return('') }}
    {%- endif -%}
    {{ return(column ~ " >= timestamptz '" ~ lo ~ "' and " ~ column ~ " < timestamptz '" ~ hi ~ "'") }}
{%- endmacro %}
