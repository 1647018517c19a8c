{#- Combinations of the given columns that occur on more than one row (the grain of the
    model is broken). Any row returned fails the test. -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as n_rows
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
