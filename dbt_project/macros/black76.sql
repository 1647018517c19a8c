{#- Black-76 on the forward, for Deribit's options (which price with no discounting, r = 0).

    The standard normal distribution function N(x), for every double x: Hart's (1968)
    double-precision rational approximation as given by G. West, "Better approximations to
    cumulative normal functions", Wilmott Magazine, May 2005, figure 2: absolute error below
    1e-15. x should be a column or a cheap expression: it is repeated. -#}
{% macro std_normal_cdf(x) -%}
    (case when {{ x }} > 0
        then 1 - {{ _normal_lower_tail('abs(' ~ x ~ ')') }}
        else {{ _normal_lower_tail('abs(' ~ x ~ ')') }} end)
{%- endmacro %}

{#- N(-a) for a >= 0 (Hart / West): the rational function below 7.07, a continued fraction
    up to 37, 0 beyond. -#}
{% macro _normal_lower_tail(a) -%}
    (case
        when {{ a }} > 37 then 0.0
        when {{ a }} < 7.07106781186547 then
            exp(-{{ a }} * {{ a }} / 2)
            * ((((((0.0352624965998911 * {{ a }} + 0.700383064443688) * {{ a }}
                + 6.37396220353165) * {{ a }} + 33.912866078383) * {{ a }}
                + 112.079291497871) * {{ a }} + 221.213596169931) * {{ a }}
                + 220.206867912376)
            / (((((((0.0883883476483184 * {{ a }} + 1.75566716318264) * {{ a }}
                + 16.064177579207) * {{ a }} + 86.7807322029461) * {{ a }}
                + 296.564248779674) * {{ a }} + 637.333633378831) * {{ a }}
                + 793.826512519948) * {{ a }} + 440.413735824752)
        else
            exp(-{{ a }} * {{ a }} / 2)
            / ({{ a }} + 1 / ({{ a }} + 2 / ({{ a }} + 3 / ({{ a }} + 4 / ({{ a }} + 0.65)))))
            / 2.506628274631
    end)
{%- endmacro %}

{#- The standard normal density n(x) = exp(-x^2/2) / sqrt(2 pi). -#}
{% macro std_normal_pdf(x) -%}
    (exp(-({{ x }}) * ({{ x }}) / 2) * 0.3989422804014327)
{%- endmacro %}

{#- d1 of Black-76: (ln(F/K) + sigma^2 T / 2) / (sigma sqrt(T)); forward and strike in the
    same currency, t in years, sigma a decimal (0.45 for 45 %). d2 = d1 - sigma sqrt(T). -#}
{% macro black76_d1(forward, strike, t, sigma) -%}
    ((ln({{ forward }} / {{ strike }}) + {{ sigma }} * {{ sigma }} * {{ t }} / 2)
        / ({{ sigma }} * sqrt({{ t }})))
{%- endmacro %}

{#- The Black-76 value of an option on one unit of the underlying, in the strike's currency,
    discounted by df (1 for Deribit, which uses r = 0): call df (F N(d1) - K N(d2)), put
    df (K N(-d2) - F N(-d1)); n_d1 = N(d1), n_d2 = N(d2). -#}
{% macro black76_value(is_call, forward, strike, n_d1, n_d2, df='1.0') -%}
    ({{ df }} * (case when {{ is_call }}
        then {{ forward }} * {{ n_d1 }} - {{ strike }} * {{ n_d2 }}
        else {{ strike }} * (1 - {{ n_d2 }}) - {{ forward }} * (1 - {{ n_d1 }}) end))
{%- endmacro %}

{#- Forward delta dV/dF: call df N(d1), put df (N(d1) - 1). -#}
{% macro black76_delta(is_call, n_d1, df='1.0') -%}
    ({{ df }} * (case when {{ is_call }} then {{ n_d1 }} else {{ n_d1 }} - 1 end))
{%- endmacro %}
