{#- Weekly and monthly session calendar of the options market (Deribit's weekly and monthly
    expiries). A weekly session runs from the session weekday (Friday by default) at the
    anchor hour to the same weekday and hour a week later; a monthly session from the last
    session weekday of a month at the anchor hour to the last session weekday of the next
    month (4 or 5 weeks later).

    The session weekday is a setting of the platform (env MKT_WEEKLY_SESSION_WEEKDAY, a name
    MON..SUN, read in mkt_platform/settings.py); Dagster passes it to every dbt run as the
    var session_weekday (ISO weekday, 1 = Monday .. 7 = Sunday). The env fallback serves a
    person running dbt by hand, with the same default (FRI).

    Every macro here is a plain SQL expression (usable in a select list or a where clause)
    over a TIMESTAMPTZ; it returns a TIMESTAMPTZ at the anchor hour. The calendar is cut in
    UTC whatever the connection's TimeZone: dates are taken with timezone('UTC', ...). -#}

{#- ISO weekday (1 = Monday .. 7 = Sunday) weekly and monthly sessions start on: the var
    session_weekday when set, else env MKT_WEEKLY_SESSION_WEEKDAY (MON..SUN, default FRI). -#}
{% macro session_weekday() -%}
    {%- set names = ['MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT', 'SUN'] -%}
    {%- set value = var('session_weekday', none) -%}
    {%- if value is none -%}
        {%- set raw = env_var('MKT_WEEKLY_SESSION_WEEKDAY', 'FRI') -%}
        {%- set name = raw | trim | upper -%}
        {%- if name not in names -%}
            {{ exceptions.raise_compiler_error(
                "MKT_WEEKLY_SESSION_WEEKDAY must be one of " ~ (names | join(', '))
                ~ ", got '" ~ raw ~ "'") }}
        {%- endif -%}
        {%- set value = names.index(name) + 1 -%}
    {%- endif -%}
    {%- if (value | string | trim) not in ['1', '2', '3', '4', '5', '6', '7'] -%}
        {{ exceptions.raise_compiler_error(
            "var session_weekday must be an ISO weekday 1..7, got '" ~ value ~ "'") }}
    {%- endif -%}
    {{ value | int }}
{%- endmacro %}

{#- UTC date (DATE) of the daily session containing ts: the day whose anchor hour is the
    latest at or before ts. -#}
{% macro session_calendar_day(ts) -%}
    cast(timezone('UTC', {{ ts }}) - interval ({{ session_anchor_hour() }}) hour as date)
{%- endmacro %}

{#- The anchor hour of the UTC date day, as a TIMESTAMPTZ. -#}
{% macro session_calendar_at_anchor(day) -%}
    timezone('UTC', cast({{ day }} as timestamp) + interval ({{ session_anchor_hour() }}) hour)
{%- endmacro %}

{#- The last session weekday (DATE) of the month of the date day: the month's last day minus
    ((isodow(last day) - weekday + 7) % 7) days. -#}
{% macro session_calendar_last_weekday_of_month(day) -%}
    (last_day({{ day }}) - cast((isodow(last_day({{ day }})) - {{ session_weekday() }} + 7) % 7 as integer))
{%- endmacro %}

{#- Start of the weekly session containing ts (a TIMESTAMPTZ, normally a daily session_start):
    the latest session weekday at the anchor hour at or before ts. -#}
{% macro weekly_session_start(ts) -%}
    {%- set day = session_calendar_day(ts) -%}
    {{ session_calendar_at_anchor(
        '(' ~ day ~ ' - cast((isodow(' ~ day ~ ') - ' ~ session_weekday() ~ ' + 7) % 7 as integer))'
    ) }}
{%- endmacro %}

{#- Start of the monthly session containing ts (a TIMESTAMPTZ, normally a daily
    session_start): the latest "last session weekday of a month" at the anchor hour at or
    before ts. That is the last weekday of ts's own month when the daily session of ts is on
    or after it, else the last weekday of the month before. -#}
{% macro monthly_session_start(ts) -%}
    {%- set day = session_calendar_day(ts) -%}
    {%- set this_month = session_calendar_last_weekday_of_month(day) -%}
    {#- day - day-of-month is the last day of the month before. -#}
    {%- set month_before = session_calendar_last_weekday_of_month(
        '(' ~ day ~ ' - cast(dayofmonth(' ~ day ~ ') as integer))') -%}
    {{ session_calendar_at_anchor(
        'case when ' ~ this_month ~ ' <= ' ~ day ~ ' then ' ~ this_month ~ ' else ' ~ month_before ~ ' end'
    ) }}
{%- endmacro %}

{#- End (exclusive) of the monthly session that starts at start (a monthly_session_start):
    the last session weekday of the following month at the anchor hour, 28 or 35 days after
    start. -#}
{% macro monthly_session_end(start) -%}
    {%- set day = session_calendar_day(start) -%}
    {#- last_day(day) + 1 is the first day of the following month. -#}
    {{ session_calendar_at_anchor(
        session_calendar_last_weekday_of_month('(last_day(' ~ day ~ ') + 1)')
    ) }}
{%- endmacro %}
