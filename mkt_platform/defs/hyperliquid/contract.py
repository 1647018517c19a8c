"""Contracts of Hyperliquid's info API payloads (``POST /info``) and their Arrow lake schemas.

Hyperliquid answers JSON *objects* keyed by field name, not positional arrays like Binance,
so each contract here is an :class:`~mkt_platform.lib.contracts.ObjectContract` (the one
contract framework of every venue): every declared field is looked up by its JSON key.
Numbers arrive as decimal strings (``"0.001604"``), times and counts as integers.

* A missing key, a JSON type other than the declared one (a JSON number where a decimal
  string is expected, say), a non-numeric string, or a value the storage type cannot hold
  exactly raises :class:`~mkt_platform.lib.contracts.ContractViolation`. The violation's
  ``field`` is the JSON key as Hyperliquid spells it (``fundingRate``, ``impactPxs[0]``).
* Hyperliquid always sends a candle's ``n`` and a funding record's ``premium``. Those two
  fields alone are declared nullable, because the offline replay serves freqtrade
  recordings that lack them (SOURCES.md section 10: the 1h candles of BTC, ETH, SOL and
  HYPE keep no trade count, the funding files no premium): the replay sends ``null`` rather
  than inventing values, and the lake stores NULL. The key itself must still be present,
  and a value that is not null must still have the declared type (as for Binance's
  freqtrade 1m klines).
* A key the contract does not declare is **not** an error: it is reported in
  :attr:`~mkt_platform.lib.contracts.Validated.added_fields` so the caller can warn about
  schema drift, and dropped.

Decimal types (every value is checked to fit exactly; nothing is ever rounded):

* ``PRICE`` = DECIMAL(38, 8) for prices (quote currency, USDC) and candle volumes (base).
  Hyperliquid perp prices have at most 6 decimals (8 for spot).
* ``FINE`` = DECIMAL(38, 12) for funding rates, premiums, open interest and 24h volumes.
  The recordings carry up to 10 decimals there (``"-0.0000015186"`` funding,
  ``"1516669192.1953897476"`` dayNtlVlm in the 2026 asset contexts; 8 in the 2023 funding
  history), so 12 leaves headroom and still allows 26 integer digits.

Endpoint docs:
https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/info-endpoint
"""

from __future__ import annotations

import pyarrow as pa

from mkt_platform.lib.contracts import (
    PRICE,
    UTC_MS,
    ContractField,
    ObjectContract,
    WireType,
)

#: Funding rates, premiums, open interest and 24h volumes: up to 10 decimals recorded.
FINE = pa.decimal128(38, 12)

#: Hyperliquid candle intervals with a fixed length, in milliseconds ("1M" is a calendar month).
INTERVAL_MS: dict[str, int] = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "3d": 259_200_000,
    "1w": 604_800_000,
}
#: Every interval ``candleSnapshot`` accepts.
INTERVALS = frozenset({*INTERVAL_MS, "1M"})


def _f(
    name: str, key: str, wire: WireType, arrow_type: pa.DataType, description: str
) -> ContractField:
    return ContractField(name, wire, arrow_type, description, key=key)


_INT, _NUM, _STR = WireType.INTEGER, WireType.NUMERIC_STRING, WireType.STRING

#: One ``candleSnapshot`` candle: ``{"t","T","s","i","o","c","h","l","v","n"}``.
CANDLE_CONTRACT = ObjectContract(
    dataset="hyperliquid_candles",
    fields=(
        _f("coin", "s", _STR, pa.string(), "Coin (perp asset name), e.g. BTC or kPEPE."),
        _f("open_time", "t", _INT, UTC_MS, "Candle open time (UTC)."),
        _f(
            "close_time", "T", _INT, UTC_MS, "Candle close time (UTC), inclusive: t + interval - 1."
        ),
        _f("interval", "i", _STR, pa.string(), "Candle interval, e.g. 1h."),
        _f("open", "o", _NUM, PRICE, "First trade price (quote, USDC)."),
        _f("high", "h", _NUM, PRICE, "Highest trade price (quote, USDC)."),
        _f("low", "l", _NUM, PRICE, "Lowest trade price (quote, USDC)."),
        _f("close", "c", _NUM, PRICE, "Last trade price (quote, USDC)."),
        _f("volume", "v", _NUM, PRICE, "Traded volume (base units of the coin)."),
        ContractField(
            "trades",
            _INT,
            pa.int64(),
            "Number of trades; null where the recording did not keep it (freqtrade).",
            nullable=True,
            key="n",
        ),
    ),
)

#: One ``fundingHistory`` record: ``{"coin","fundingRate","premium","time"}``.
FUNDING_CONTRACT = ObjectContract(
    dataset="hyperliquid_funding",
    fields=(
        _f("coin", "coin", _STR, pa.string(), "Coin (perp asset name)."),
        _f(
            "time",
            "time",
            _INT,
            UTC_MS,
            "Funding time (UTC) as sent, with its millisecond jitter (e.g. 08:00:00.388).",
        ),
        _f(
            "funding_rate",
            "fundingRate",
            _NUM,
            FINE,
            "Funding rate for the period (fraction of notional; hourly since 2023-06-08, "
            "8-hourly before).",
        ),
        ContractField(
            "premium",
            _NUM,
            FINE,
            "Premium index (mark vs oracle, fraction); null where the recording did not "
            "keep it (freqtrade).",
            nullable=True,
            key="premium",
        ),
    ),
)

#: One perp asset context (second element of ``metaAndAssetCtxs``). The coin is not in it:
#: it is the meta universe entry at the same index, added by the client.
ASSET_CTX_CONTRACT = ObjectContract(
    dataset="hyperliquid_asset_ctxs",
    fields=(
        _f("funding", "funding", _NUM, FINE, "Current predicted hourly funding rate (fraction)."),
        _f("open_interest", "openInterest", _NUM, FINE, "Open interest (base units)."),
        _f("prev_day_px", "prevDayPx", _NUM, PRICE, "Mark price 24h ago (quote, USDC)."),
        _f("day_ntl_vlm", "dayNtlVlm", _NUM, FINE, "24h notional volume (quote, USDC)."),
        ContractField(
            "premium",
            _NUM,
            FINE,
            "Premium index (fraction); null for assets without a book (delisted).",
            nullable=True,
            key="premium",
        ),
        _f("oracle_px", "oraclePx", _NUM, PRICE, "Oracle price (quote, USDC)."),
        _f("mark_px", "markPx", _NUM, PRICE, "Mark price (quote, USDC)."),
        ContractField(
            "mid_px",
            _NUM,
            PRICE,
            "Order book mid price (quote, USDC); null if no book.",
            nullable=True,
            key="midPx",
        ),
        ContractField(
            "impact_bid_px",
            _NUM,
            PRICE,
            "Impact bid price (quote, USDC), impactPxs[0]; null if no book.",
            nullable=True,
            key="impactPxs",
            index=0,
        ),
        ContractField(
            "impact_ask_px",
            _NUM,
            PRICE,
            "Impact ask price (quote, USDC), impactPxs[1]; null if no book.",
            nullable=True,
            key="impactPxs",
            index=1,
        ),
        _f("day_base_vlm", "dayBaseVlm", _NUM, FINE, "24h volume (base units)."),
    ),
)

#: Lake schema of candles: the contract's columns (the coin is in every candle).
CANDLE_LAKE_SCHEMA = CANDLE_CONTRACT.arrow_schema()

#: Lake schema of funding history: the contract's columns (the coin is in every record).
FUNDING_LAKE_SCHEMA = FUNDING_CONTRACT.arrow_schema()

#: Lake schema of asset contexts: the coin (from the meta universe), then the context fields.
ASSET_CTX_LAKE_SCHEMA = pa.schema(
    [pa.field("coin", pa.string(), nullable=False), *ASSET_CTX_CONTRACT.arrow_schema()],
    metadata={"contract": ASSET_CTX_CONTRACT.dataset},
)
