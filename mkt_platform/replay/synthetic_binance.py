"""SYNTHETIC Binance spot 24h tickers and recent trades, for the offline replay and tests
only. NOT market data.

No real answer of ``GET /api/v3/ticker/24hr`` or ``GET /api/v3/trades`` is recorded in
``shared/data`` (SOURCES.md: "Binance /api/v3/ticker/24hr and /api/v3/trades real responses:
none found"). The replay answers them for the symbols whose order book *is* recorded
(cryptofeed's 2021-10-12 depth capture) with a synthetic market around that real book, in
Binance's exact JSON format, and says so (a ``X-Replay-Synthetic`` header and a WARNING).

The synthetic market: a trade every :data:`TRADE_EVERY_MS` ms, numbered from the epoch (trade
``i`` at ``i * TRADE_EVERY_MS`` plus a seeded jitter), each at the recorded best bid (the
taker sold: ``isBuyerMaker`` true) or best ask, with a seeded quantity. A trade is a function
of its symbol and id alone, so consecutive snapshots overlap exactly as Binance's do, and the
24h ticker is computed from the same trades (its ``lastId`` is the newest trade's id, its
``volume`` their sum).
"""

from __future__ import annotations

import random
from decimal import Decimal

#: One synthetic trade every 2 seconds: 43,200 in 24 hours.
TRADE_EVERY_MS = 2_000
DAY_MS = 86_400_000
_EIGHT = Decimal("0.00000001")


def _trade(symbol: str, trade_id: int, bid: str, ask: str) -> dict:
    """SYNTHETIC trade ``trade_id`` of ``symbol``, in ``GET /api/v3/trades``' format."""
    rng = random.Random(f"{symbol}:{trade_id}")
    sold = rng.random() < 0.5
    price = bid if sold else ask
    quantity = (Decimal(rng.randint(1, 50_000)) / 100).quantize(_EIGHT)
    return {
        "id": trade_id,
        "price": price,
        "qty": f"{quantity:f}",
        "quoteQty": f"{(Decimal(price) * quantity).normalize():f}",
        "time": trade_id * TRADE_EVERY_MS + rng.randint(0, TRADE_EVERY_MS - 1),
        "isBuyerMaker": sold,
        "isBestMatch": True,
    }


def _last_id(now_ms: int) -> int:
    """The newest trade at ``now_ms`` (its jittered time may be up to 2 s later than its slot,
    so the slot before the current one is the newest surely done)."""
    return now_ms // TRADE_EVERY_MS - 1


def recent_trades(symbol: str, book: dict, now_ms: int, limit: int) -> list[dict]:
    """The ``limit`` newest SYNTHETIC trades of ``symbol`` at ``now_ms``, oldest first, at the
    recorded ``book``'s best bid and ask."""
    bid, ask = book["bids"][0][0], book["asks"][0][0]
    last = _last_id(now_ms)
    return [_trade(symbol, i, bid, ask) for i in range(last - limit + 1, last + 1)]


def ticker_24h(symbol: str, book: dict, now_ms: int) -> dict:
    """The SYNTHETIC 24-hour statistics of ``symbol`` at ``now_ms`` (``GET
    /api/v3/ticker/24hr``, type FULL, keys in Binance's order), computed from the synthetic
    trades of the window and the recorded ``book``'s best levels."""
    bid, ask = book["bids"][0], book["asks"][0]
    last = _last_id(now_ms)
    first = (now_ms - DAY_MS) // TRADE_EVERY_MS
    trades = [_trade(symbol, i, bid[0], ask[0]) for i in range(first, last + 1)]
    volume = sum(Decimal(t["qty"]) for t in trades)
    quote_volume = sum(Decimal(t["quoteQty"]) for t in trades)
    prices = [Decimal(t["price"]) for t in trades]
    opened, closed = prices[0], prices[-1]
    previous = _trade(symbol, first - 1, bid[0], ask[0])
    change = closed - opened
    return {
        "symbol": symbol,
        "priceChange": f"{change.quantize(_EIGHT):f}",
        "priceChangePercent": f"{(change / opened * 100).quantize(Decimal('0.001')):f}",
        "weightedAvgPrice": f"{(quote_volume / volume).quantize(_EIGHT):f}",
        "prevClosePrice": previous["price"],
        "lastPrice": trades[-1]["price"],
        "lastQty": trades[-1]["qty"],
        "bidPrice": bid[0],
        "bidQty": bid[1],
        "askPrice": ask[0],
        "askQty": ask[1],
        "openPrice": trades[0]["price"],
        "highPrice": f"{max(prices).quantize(_EIGHT):f}",
        "lowPrice": f"{min(prices).quantize(_EIGHT):f}",
        "volume": f"{volume.quantize(_EIGHT):f}",
        "quoteVolume": f"{quote_volume.quantize(_EIGHT):f}",
        "openTime": now_ms - DAY_MS,
        "closeTime": now_ms,
        "firstId": first,
        "lastId": last,
        "count": last - first + 1,
    }
