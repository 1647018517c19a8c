"""SYNTHETIC Hyperliquid candles, for benchmarks and scale tests only. NOT market data.

The only real Hyperliquid candles recorded are 24 hourly kPEPE candles (see
``shared/data/SOURCES.md`` section 4), far too few to exercise pagination (5000 candles a
request) or to benchmark a pipeline. :func:`write_synthetic_candles` writes a seeded random
walk in Hyperliquid's exact ``candleSnapshot`` candle format to a file whose name starts with
``SYNTHETIC_``; :class:`~mkt_platform.replay.hyperliquid.HyperliquidHandler` serves such files
(logging a WARNING that says SYNTHETIC) for coin/intervals that have no real recording.

Never use these files to check a number against reality: the prices are invented.
"""

from __future__ import annotations

import json
import math
import random
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from pathlib import Path

from mkt_platform.defs.hyperliquid.contract import INTERVAL_MS
from mkt_platform.replay.hyperliquid import SYNTHETIC_PREFIX

# Per-candle log-return standard deviation for a 1h candle (~0.6%); scaled by sqrt(time).
_HOURLY_VOL = 0.006


def synthetic_file_name(coin: str, interval: str, start_ms: int, end_ms: int) -> str:
    """The file name :func:`write_synthetic_candles` uses (and the handler recognises)."""
    return f"{SYNTHETIC_PREFIX}{coin}_{interval}_{start_ms}_{end_ms}.json"


def write_synthetic_candles(
    out_dir: Path | str,
    coin: str,
    interval: str,
    start_ms: int,
    end_ms: int,
    seed: int,
    *,
    start_price: Decimal | str = "100",
) -> Path:
    """Write SYNTHETIC candles of ``coin``/``interval`` opening in ``[start_ms, end_ms]``.

    Every candle is a JSON object exactly like Hyperliquid's ``candleSnapshot`` candles (same
    keys, in the recorded order ``T,c,h,i,l,n,o,s,t,v``): ``t``/``T`` open/close time (UTC ms,
    ints, ``T = t + interval_ms - 1``), ``s`` coin, ``i`` interval, ``o/h/l/c`` prices and
    ``v`` volume as decimal strings, ``n`` trade count (int). Open times are aligned to the
    interval (the first is the first multiple of the interval >= ``start_ms``), contiguous
    and ascending; each open equals the previous close; ``l <= min(o, c)`` and
    ``h >= max(o, c)``. Prices keep about 6 significant digits of ``start_price``.

    Args:
        out_dir: folder to write to (created if missing).
        coin: coin name, e.g. ``BTC``.
        interval: a fixed-length Hyperliquid interval (see :data:`INTERVAL_MS`).
        start_ms: first open time, UTC milliseconds, inclusive.
        end_ms: last open time, UTC milliseconds, inclusive.
        seed: random seed; the same arguments always write the same bytes.
        start_price: the first open price (quote currency).

    Returns:
        The path written: ``out_dir/SYNTHETIC_candleSnapshot_{coin}_{interval}_{start}_{end}.json``.

    Raises:
        ValueError: unsupported interval, ``start_ms > end_ms``, or a non-positive start price.
    """
    if interval not in INTERVAL_MS:
        raise ValueError(f"unsupported interval {interval!r}; use one of {sorted(INTERVAL_MS)}")
    if start_ms > end_ms:
        raise ValueError(f"start_ms {start_ms} is after end_ms {end_ms}")
    price = Decimal(str(start_price))
    if not price.is_finite() or price <= 0:
        raise ValueError(f"start_price must be positive, got {start_price!r}")
    step = INTERVAL_MS[interval]
    tick = Decimal(1).scaleb(min(0, price.adjusted() - 5))  # ~6 significant digits
    rng = random.Random(seed)
    vol = _HOURLY_VOL * math.sqrt(step / 3_600_000)

    candles: list[str] = []
    close = price.quantize(tick)
    first_open = -(-start_ms // step) * step
    for open_time in range(first_open, end_ms + 1, step):
        open_ = close
        close = max(tick, _round(open_ * Decimal(math.exp(rng.gauss(0.0, vol))), tick))
        top, bottom = max(open_, close), min(open_, close)
        high = _round(top * Decimal(1 + abs(rng.gauss(0.0, vol / 2))), tick, ROUND_CEILING)
        low = max(
            tick, _round(bottom * Decimal(1 - abs(rng.gauss(0.0, vol / 2))), tick, ROUND_FLOOR)
        )
        low = min(low, bottom)
        volume = Decimal(rng.lognormvariate(math.log(1000.0), 0.8)).quantize(Decimal("0.0001"))
        candle = {
            "T": open_time + step - 1,
            "c": _text(close),
            "h": _text(high),
            "i": interval,
            "l": _text(low),
            "n": rng.randint(1, 5000),
            "o": _text(open_),
            "s": coin,
            "t": open_time,
            "v": _text(volume),
        }
        candles.append(json.dumps(candle, separators=(",", ":")))

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / synthetic_file_name(coin, interval, start_ms, end_ms)
    path.write_text("[" + ",\n".join(candles) + "]\n")
    return path


def _round(value: Decimal, tick: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    return value.quantize(tick, rounding=rounding)


def _text(value: Decimal) -> str:
    """Plain decimal notation, as Hyperliquid sends (``str`` would give ``1E-8``)."""
    return format(value, "f")
