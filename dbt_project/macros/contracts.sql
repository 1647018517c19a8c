{#- NOT NULL constraints of the selected models' enforced contracts, on their tables as they
    already stand. dbt applies a contract's constraints only when it creates a table: an
    incremental model built before its contract (or before a column got its constraint) would
    keep a nullable column and its rows would go unguarded, since the constraint replaced the
    column's not_null test. Run once per dbt command (on-run-start): one query of the
    warehouse's catalog, then, only for a table that lacks a constraint, an ALTER of each such
    column (which fails, naming the table and column, if the table holds a NULL there). An
    empty table is created again from its contract instead (columns, types and constraints):
    DuckLake cannot SET NOT NULL on a table without statistics, which an empty one is.
    Nothing is done for a model that will be fully refreshed (dbt creates its table again,
    with its constraints: the way out for a table holding a NULL), nor to a view in a
    contracted model's place (dbt replaces it). -#}
{% macro apply_not_null_constraints() -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set wanted = [] -%}
    {%- set contracted = {} -%}  {#- schema.table: (node, its required columns) -#}
    {%- for node in graph.nodes.values()
        if node.resource_type == 'model'
        and node.unique_id in selected_resources
        and node.config.contract.enforced
        and node.config.materialized in ('table', 'incremental')
        and not (flags.FULL_REFRESH or node.config.full_refresh) -%}
        {%- set name = node.schema ~ '.' ~ node.alias -%}
        {%- set required = [] -%}
        {%- for column in node.columns.values() -%}
            {%- if column.constraints | selectattr('type', 'equalto', 'not_null') | list -%}
                {%- do required.append(column.name) -%}
                {%- do wanted.append(name ~ '.' ~ column.name) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- do contracted.update({name: (node, required)}) -%}
    {%- endfor -%}
    {%- if not wanted -%}
        {{ return('') }}
    {%- endif -%}
    {%- set nullable = run_query(
        "select table_schema, table_name, column_name from information_schema.columns "
        ~ "join information_schema.tables using (table_catalog, table_schema, table_name) "
        ~ "where table_catalog = '" ~ target.database ~ "' and is_nullable = 'YES' "
        ~ "and table_type = 'BASE TABLE' "
        ~ "and table_schema || '.' || table_name || '.' || column_name in ('"
        ~ wanted | join("', '") ~ "') order by table_schema, table_name"
    ) -%}
    {%- set lacking = {} -%}
    {%- for row in nullable.rows -%}
        {%- do lacking.setdefault(row[0] ~ '.' ~ row[1], []).append(row[2]) -%}
    {%- endfor -%}
    {%- for name, columns in lacking.items() -%}
        {%- set node, required = contracted[name] -%}
        {%- set relation = adapter.quote(target.database) ~ '.' ~ adapter.quote(node.schema)
            ~ '.' ~ adapter.quote(node.alias) -%}
        {#- the count and the new table in one transaction: a row another command commits
            in between makes this one fail, never vanish -#}
        {%- do run_query('begin') -%}
        {%- set rows = run_query('select count(*) from ' ~ relation).columns[0].values()[0] -%}
        {%- if rows == 0 -%}
            {%- do log('creating the empty table ' ~ name ~ ' again with its contract\'s '
                ~ 'NOT NULL constraints (' ~ columns | join(', ') ~ ')', info=true) -%}
            {%- set definitions = [] -%}
            {%- for column in node.columns.values() -%}
                {%- do definitions.append(adapter.quote(column.name) ~ ' ' ~ column.data_type
                    ~ (' not null' if column.name in required else '')) -%}
            {%- endfor -%}
            {%- do run_query('create or replace table ' ~ relation ~ ' ('
                ~ definitions | join(', ') ~ ')') -%}
            {%- do run_query('commit') -%}
        {%- else -%}
            {%- do run_query('commit') -%}
            {%- for column in columns -%}
                {%- do log('adding the contract\'s NOT NULL constraint to ' ~ name ~ '.'
                    ~ column, info=true) -%}
                {%- do run_query('alter table ' ~ relation ~ ' alter column '
                    ~ adapter.quote(column) ~ ' set not null') -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return('') }}
{%- endmacro %}
