"""Contracts of Polygon's aggregate bars (``GET /v2/aggs/ticker/...``) and options contracts
listing (``GET /v3/reference/options/contracts``).

Polygon answers ``{"ticker", "status", "adjusted", "queryCount", "resultsCount", "results":
[bar, ...], "request_id", "next_url"?}``; each bar is ``{"t", "o", "h", "l", "c", "v", "vw",
"n"}`` with ``t`` the bar's start in UTC milliseconds and the rest JSON numbers. The body is
decoded with ``parse_float=Decimal``, so prices and volumes are stored exactly as sent (as
DECIMAL(38,8); Polygon sends stock prices with up to 4 decimals). ``v``, ``vw`` and ``n`` are
optional: Polygon leaves them out for indices (``I:VIX``), and ``n`` for some bars.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pyarrow as pa

from mkt_platform.lib.contracts import (
    PRICE,
    UTC_MS,
    ContractField,
    ObjectContract,
    RangeRule,
    WireType,
)

_NUMBER = WireType.NUMBER

#: One aggregate bar.
AGG_CONTRACT = ObjectContract(
    dataset="polygon_aggs",
    record_name="bar",
    fields=(
        ContractField("bar_time", WireType.INTEGER, UTC_MS, "Start of the bar (UTC).", key="t"),
        ContractField("open", _NUMBER, PRICE, "First trade price (USD).", key="o"),
        ContractField("high", _NUMBER, PRICE, "Highest trade price (USD).", key="h"),
        ContractField("low", _NUMBER, PRICE, "Lowest trade price (USD).", key="l"),
        ContractField("close", _NUMBER, PRICE, "Last trade price (USD).", key="c"),
        ContractField(
            "volume",
            _NUMBER,
            PRICE,
            "Traded volume (shares or contracts).",
            key="v",
            required=False,
        ),
        ContractField(
            "vwap",
            _NUMBER,
            PRICE,
            "Volume-weighted average price (USD).",
            key="vw",
            required=False,
        ),
        ContractField(
            "transactions",
            WireType.INTEGER,
            pa.int64(),
            "Number of trades in the bar.",
            key="n",
            required=False,
        ),
    ),
    ignored_keys=frozenset({"otc"}),
)

#: Storage schema of the raw aggregate Parquet files: one row per ticker and bar.
AGGS_LAKE_SCHEMA = pa.schema(
    [pa.field("ticker", pa.string(), nullable=False), *AGG_CONTRACT.arrow_schema()],
    metadata={"contract": AGG_CONTRACT.dataset},
)


def _positive(value: int | Decimal) -> tuple[str, str] | None:
    return None if value > 0 else ("a positive number", str(value))


def _one_of(allowed: frozenset[str], expected: str) -> RangeRule:
    def check(value: str) -> tuple[str, str] | None:
        return None if value in allowed else (expected, repr(value))

    return check


def _iso_date(value: str) -> tuple[str, str] | None:
    try:
        date.fromisoformat(value)
    except ValueError:
        return ("a date YYYY-MM-DD", repr(value))
    return None if len(value) == 10 else ("a date YYYY-MM-DD", repr(value))


#: One options contract of ``GET /v3/reference/options/contracts``: ``{"ticker",
#: "underlying_ticker", "contract_type", "exercise_style", "expiration_date", "strike_price",
#: "shares_per_contract", "primary_exchange"?, "cfi"?}``. The strike is a JSON number (USD),
#: the expiration a New York date.
OPTIONS_CONTRACT_CONTRACT = ObjectContract(
    dataset="polygon_options_contracts",
    record_name="contract",
    record_id="ticker",
    fields=(
        ContractField(
            "ticker", WireType.STRING, pa.string(), "Option ticker (O:SPY250902C00625000)."
        ),
        ContractField(
            "underlying_ticker", WireType.STRING, pa.string(), "Underlying's ticker (SPY)."
        ),
        ContractField(
            "contract_type",
            WireType.STRING,
            pa.string(),
            "call or put.",
            check=_one_of(frozenset({"call", "put"}), "'call' or 'put'"),
        ),
        ContractField(
            "exercise_style",
            WireType.STRING,
            pa.string(),
            "american, european or bermudan.",
            required=False,
        ),
        ContractField(
            "expiration_date",
            WireType.STRING,
            pa.string(),
            "Expiration date (New York; YYYY-MM-DD).",
            check=_iso_date,
        ),
        ContractField("strike_price", _NUMBER, PRICE, "Strike price (USD).", check=_positive),
        ContractField(
            "shares_per_contract",
            WireType.INTEGER,
            pa.int64(),
            "Shares delivered per contract (100).",
            check=_positive,
        ),
        ContractField(
            "primary_exchange",
            WireType.STRING,
            pa.string(),
            "Primary exchange's MIC (BATO).",
            required=False,
        ),
    ),
    ignored_keys=frozenset({"cfi", "correction", "additional_underlyings"}),
)

#: Storage schema of ``polygon_spy_options_contracts``: the contracts selected at a trading
#: day's open, with the selection's inputs (one file per trading day).
OPTIONS_CONTRACTS_LAKE_SCHEMA = pa.schema(
    [
        *[
            f.with_type(pa.date32()) if f.name == "expiration_date" else f
            for f in OPTIONS_CONTRACT_CONTRACT.arrow_schema()
        ],
        pa.field("as_of", pa.date32(), nullable=False),
        pa.field("underlying_open", PRICE, nullable=False),
        pa.field("moneyness_at_open", PRICE, nullable=False),
    ],
    metadata={"contract": OPTIONS_CONTRACT_CONTRACT.dataset},
)

#: The sentiments Polygon's news ``insights`` give.
SENTIMENTS = frozenset({"positive", "neutral", "negative"})

#: One article of ``GET /v2/reference/news``, after the client lifted the ticker's insight and
#: the publisher's name out of their objects (``publisher.name`` -> ``publisher_name``; the
#: ``insights[]`` entry of the ticker asked -> ``sentiment``, ``sentiment_reasoning``).
NEWS_CONTRACT = ObjectContract(
    dataset="polygon_news",
    record_name="article",
    record_id="id",
    fields=(
        ContractField("id", WireType.STRING, pa.string(), "Polygon's article id."),
        ContractField(
            "published_utc",
            WireType.STRING,
            pa.string(),
            "Publication time (ISO 8601, UTC).",
        ),
        ContractField("title", WireType.STRING, pa.string(), "Headline."),
        ContractField("author", WireType.STRING, pa.string(), "Author.", required=False),
        ContractField("article_url", WireType.STRING, pa.string(), "The article's URL."),
        ContractField(
            "publisher_name", WireType.STRING, pa.string(), "Publisher (publisher.name)."
        ),
        ContractField(
            "tickers",
            WireType.STRING,
            pa.string(),
            "Every ticker the article names, comma-separated (tickers[]).",
            key="tickers_joined",
        ),
        ContractField(
            "sentiment",
            WireType.STRING,
            pa.string(),
            "The insight's sentiment on the ticker: positive, neutral or negative; NULL without "
            "an insight on it.",
            required=False,
            check=_one_of(SENTIMENTS, "'positive', 'neutral' or 'negative'"),
        ),
        ContractField(
            "sentiment_reasoning",
            WireType.STRING,
            pa.string(),
            "Polygon's reasoning for the sentiment.",
            required=False,
        ),
    ),
    ignored_keys=frozenset(
        {
            "publisher",
            "insights",
            "tickers",
            "amp_url",
            "image_url",
            "description",
            "keywords",
        }
    ),
)

#: Storage schema of ``polygon_news``: one row per article, one file per trading day.
NEWS_LAKE_SCHEMA = pa.schema(
    [
        pa.field("ticker", pa.string(), nullable=False),
        *[
            f.with_type(UTC_MS) if f.name == "published_utc" else f
            for f in NEWS_CONTRACT.arrow_schema()
        ],
    ],
    metadata={"contract": NEWS_CONTRACT.dataset},
)
