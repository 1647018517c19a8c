{#- NOT NULL constraints of the selected models' enforced contracts, on their tables as they
    already stand. dbt applies a contract's constraints only when it creates a table: an
    incremental model built before its contract (or before a column got its constraint) would
    keep a nullable column and its rows would go unguarded, since the constraint replaced the
    column's not_null test. Run once per dbt command (on-run-start): one query of the
    warehouse's catalog, then an ALTER only for a constraint a table lacks (which fails, naming
    the table and column, if the table already holds a NULL there). -#}
{% macro apply_not_null_constraints() -%}
    {%- if not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- set wanted = [] -%}
    {%- for node in graph.nodes.values()
        if node.resource_type == 'model'
        and node.unique_id in selected_resources
        and node.config.contract.enforced
        and node.config.materialized in ('table', 'incremental') -%}
        {%- for column in node.columns.values() -%}
            {%- if column.constraints | selectattr('type', 'equalto', 'not_null') | list -%}
                {%- do wanted.append(node.schema ~ '.' ~ node.alias ~ '.' ~ column.name) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- if not wanted -%}
        {{ return('') }}
    {%- endif -%}
    {%- set nullable = run_query(
        "select table_schema, table_name, column_name from information_schema.columns "
        ~ "where table_catalog = '" ~ target.database ~ "' and is_nullable = 'YES' "
        ~ "and table_schema || '.' || table_name || '.' || column_name in ('"
        ~ wanted | join("', '") ~ "')"
    ) -%}
    {%- for row in nullable.rows -%}
        {%- do log('adding the contract\'s NOT NULL constraint to ' ~ row[0] ~ '.' ~ row[1]
            ~ '.' ~ row[2], info=true) -%}
        {%- do run_query('alter table ' ~ adapter.quote(target.database) ~ '.'
            ~ adapter.quote(row[0]) ~ '.' ~ adapter.quote(row[1])
            ~ ' alter column ' ~ adapter.quote(row[2]) ~ ' set not null') -%}
    {%- endfor -%}
    {{ return('') }}
{%- endmacro %}
