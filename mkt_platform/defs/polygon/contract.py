"""Contract of Polygon's aggregate bars (``GET /v2/aggs/ticker/...``).

Polygon answers ``{"ticker", "status", "adjusted", "queryCount", "resultsCount", "results":
[bar, ...], "request_id", "next_url"?}``; each bar is ``{"t", "o", "h", "l", "c", "v", "vw",
"n"}`` with ``t`` the bar's start in UTC milliseconds and the rest JSON numbers. The body is
decoded with ``parse_float=Decimal``, so prices and volumes are stored exactly as sent (as
DECIMAL(38,8); Polygon sends stock prices with up to 4 decimals). ``v``, ``vw`` and ``n`` are
optional: Polygon leaves them out for indices (``I:VIX``), and ``n`` for some bars.
"""

from __future__ import annotations

import pyarrow as pa

from mkt_platform.lib.contracts import PRICE, UTC_MS, ContractField, ObjectContract, WireType

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
