"""The frames the capture service reads, their contracts, and the rows they become.

Each stream's frames are checked against a declared contract (pydantic models, strict:
prices and quantities must arrive as numeric strings, times as integers), as the REST pulls'
payloads are; a frame that breaks it raises :class:`FrameViolation`, which names the stream,
the field, what was expected and what came.

Streams (each a dataset of the lake, see :data:`DATASETS`):

* Hyperliquid ``candle`` (``wss://api.hyperliquid.xyz/ws``, subscription
  ``{"type": "candle", "coin": C, "interval": "1m"}``): pushes of the current 1m candle,
  ``{"channel": "candle", "data": {"t", "T", "s", "i", "o", "c", "h", "l", "v", "n"}}``.
  Dataset ``hyperliquid/candles_1m_stream``: the latest push of each (coin, minute).
* Hyperliquid ``activeAssetCtx`` (subscription ``{"type": "activeAssetCtx", "coin": C}``):
  ``{"channel": "activeAssetCtx", "data": {"coin", "ctx": {"funding", "openInterest",
  "oraclePx", "markPx", "midPx", "premium", ...}}}``. The frame carries no time: a row is
  stamped with the minute it was received in. Dataset
  ``hyperliquid/asset_contexts_1m_stream``: the latest context of each (coin, minute).
* Binance USD-M futures liquidations (``wss://fstream.binance.com/ws/!forceOrder@arr``):
  ``{"e": "forceOrder", "E", "o": {"s", "S", "o", "f", "q", "p", "ap", "X", "l", "z",
  "T"}}``. Dataset ``binance_futures/liquidations_stream``: every liquidation, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mkt_platform.lib.contracts import PRICE, UTC_MS, ContractViolation

MINUTE_MS = 60_000
NUMERIC = r"^-?\d+(\.\d+)?$"


class FrameViolation(ContractViolation):
    """A frame broke its stream's contract: names the stream, the field, what was expected
    and what came. The service quarantines the frame (:mod:`mkt_platform.lib.quarantine`,
    dataset ``<stream>_stream``), where the schema-drift sensor alerts once per change, as
    for the REST pulls; it is never buffered."""

    def __init__(self, stream: str, field: str, expected: str, observed: str) -> None:
        super().__init__(f"{stream}_stream", f"{stream} websocket frame", field, expected, observed)
        self.stream = stream


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


Num = Field(pattern=NUMERIC)


class _Candle(_Strict):
    t: int
    T: int
    s: str
    i: Literal["1m"]
    o: str = Num
    c: str = Num
    h: str = Num
    low: str = Field(pattern=NUMERIC, alias="l")
    v: str = Num
    n: int


class _AssetCtx(_Strict):
    funding: str = Num
    openInterest: str = Num
    oraclePx: str = Num
    markPx: str = Num
    midPx: str | None = Field(default=None, pattern=NUMERIC)
    premium: str | None = Field(default=None, pattern=NUMERIC)


class _ActiveAssetCtx(_Strict):
    coin: str
    ctx: _AssetCtx


class _ForceOrder(_Strict):
    s: str
    S: Literal["BUY", "SELL"]
    o: str
    f: str
    q: str = Num
    p: str = Num
    ap: str = Num
    X: str
    z: str = Num
    T: int


class _ForceOrderEvent(_Strict):
    e: Literal["forceOrder"]
    E: int
    o: _ForceOrder


@dataclass(frozen=True)
class Dataset:
    """A captured dataset: where it lands and how a minute's rows are kept.

    Attributes:
        venue, name: the lake folder, ``<venue>/<name>``.
        schema: the Parquet schema of its hourly files.
        key: the columns that identify a row; a later row with the same key replaces the
            earlier one (the latest value in the minute), or, with ``keep_all``, is the same
            event received twice and is dropped.
        time_column: the row's time, which puts it in its minute and hour.
        keep_all: every distinct row is kept (liquidations), rather than the latest per key.
    """

    venue: str
    name: str
    schema: pa.Schema
    key: tuple[str, ...]
    time_column: str
    keep_all: bool = False


CANDLES = Dataset(
    "hyperliquid",
    "candles_1m_stream",
    pa.schema(
        [
            ("coin", pa.string()),
            ("open_time", UTC_MS),
            ("close_time", UTC_MS),
            ("open", PRICE),
            ("high", PRICE),
            ("low", PRICE),
            ("close", PRICE),
            ("volume", PRICE),
            ("trades", pa.int64()),
        ]
    ),
    key=("coin", "open_time"),
    time_column="open_time",
)
ASSET_CONTEXTS = Dataset(
    "hyperliquid",
    "asset_contexts_1m_stream",
    pa.schema(
        [
            ("coin", pa.string()),
            ("minute", UTC_MS),
            ("funding", pa.decimal128(38, 12)),
            ("open_interest", pa.decimal128(38, 12)),
            ("oracle_price", PRICE),
            ("mark_price", PRICE),
            ("mid_price", PRICE),
            ("premium", pa.decimal128(38, 12)),
        ]
    ),
    key=("coin", "minute"),
    time_column="minute",
)
LIQUIDATIONS = Dataset(
    "binance_futures",
    "liquidations_stream",
    pa.schema(
        [
            ("symbol", pa.string()),
            ("trade_time", UTC_MS),
            ("event_time", UTC_MS),
            ("side", pa.string()),
            ("order_type", pa.string()),
            ("time_in_force", pa.string()),
            ("quantity", PRICE),
            ("price", PRICE),
            ("average_price", PRICE),
            ("status", pa.string()),
            ("filled_quantity", PRICE),
        ]
    ),
    key=("symbol", "trade_time", "side", "price", "average_price", "filled_quantity"),
    time_column="trade_time",
    keep_all=True,
)
DATASETS = (CANDLES, ASSET_CONTEXTS, LIQUIDATIONS)


def _violation(stream: str, error: ValidationError) -> FrameViolation:
    first = error.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "(frame)"
    return FrameViolation(stream, field, first["msg"], repr(first.get("input"))[:120])


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def parse(stream: str, frame: Any, received_ms: int) -> list[tuple[Dataset, dict]]:
    """The rows of one decoded frame of ``stream`` (``hyperliquid`` or
    ``binance_liquidations``): ``(dataset, row)`` pairs; none for a control frame (a
    subscription answer, a pong).

    Raises:
        FrameViolation: the frame is not a JSON object, or a data frame breaks its contract.
    """
    if not isinstance(frame, dict):
        raise FrameViolation(stream, "(frame)", "a JSON object", type(frame).__name__)
    try:
        if stream == "hyperliquid":
            channel = frame.get("channel")
            if channel == "candle":
                data = frame.get("data")
                candles = data if isinstance(data, list) else [data]
                return [(CANDLES, _candle_row(_Candle.model_validate(c))) for c in candles]
            if channel == "activeAssetCtx":
                push = _ActiveAssetCtx.model_validate(frame.get("data"))
                minute = received_ms - received_ms % MINUTE_MS
                return [(ASSET_CONTEXTS, _ctx_row(push, minute))]
            return []  # subscriptionResponse, pong
        if frame.get("e") != "forceOrder" and "result" in frame:
            return []  # a subscription answer
        event = _ForceOrderEvent.model_validate(frame)
        return [(LIQUIDATIONS, _liquidation_row(event))]
    except ValidationError as exc:
        raise _violation(stream, exc) from None


def _candle_row(c: _Candle) -> dict:
    return {
        "coin": c.s,
        "open_time": c.t,
        "close_time": c.T,
        "open": Decimal(c.o),
        "high": Decimal(c.h),
        "low": Decimal(c.low),
        "close": Decimal(c.c),
        "volume": Decimal(c.v),
        "trades": c.n,
    }


def _ctx_row(push: _ActiveAssetCtx, minute: int) -> dict:
    ctx = push.ctx
    return {
        "coin": push.coin,
        "minute": minute,
        "funding": Decimal(ctx.funding),
        "open_interest": Decimal(ctx.openInterest),
        "oracle_price": Decimal(ctx.oraclePx),
        "mark_price": Decimal(ctx.markPx),
        "mid_price": _dec(ctx.midPx),
        "premium": _dec(ctx.premium),
    }


def _liquidation_row(event: _ForceOrderEvent) -> dict:
    o = event.o
    return {
        "symbol": o.s,
        "trade_time": o.T,
        "event_time": event.E,
        "side": o.S,
        "order_type": o.o,
        "time_in_force": o.f,
        "quantity": Decimal(o.q),
        "price": Decimal(o.p),
        "average_price": Decimal(o.ap),
        "status": o.X,
        "filled_quantity": Decimal(o.z),
    }
