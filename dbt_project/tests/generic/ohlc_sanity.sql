{#- Rows whose OHLC is inconsistent: low above open/close or high below them, high below
    low, or a negative volume. Any row returned fails the test. -#}
{% test ohlc_sanity(model, open='open', high='high', low='low', close='close', volume='volume') %}
select *
from {{ model }}
where {{ low }} > least({{ open }}, {{ close }})
   or {{ high }} < greatest({{ open }}, {{ close }})
   or {{ high }} < {{ low }}
   or {{ volume }} < 0
{% endtest %}
