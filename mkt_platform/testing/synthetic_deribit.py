"""SYNTHETIC Deribit BTC option trades: generated, not recorded. Never real market data.

The only real Deribit data the platform has is ten hours of 2022-01-01 (see
``shared/data/SOURCES.md`` section 7). For load tests and benchmarks that need whole days,
this module generates trades in Deribit's exact trade format:

* :func:`write_synthetic_trades` writes one day as JSON lines, one trade object per line,
  exactly as ``result.trades`` items of ``get_last_trades_by_currency_and_time`` (with
  ``mark_price`` and ``contracts``, which the real recording lacks), ascending by trade id.
  The file is named ``SYNTHETIC_deribit_trades_BTC_option_{YYYY-MM-DD}.jsonl``; the
  replay's :class:`~mkt_platform.replay.deribit.DeribitHandler` serves such files from its
  data dir, logging a SYNTHETIC warning.
* :func:`write_synthetic_volatility_index` writes SYNTHETIC volatility index (DVOL) candles
  at a resolution Deribit was never recorded at (``3600``, hourly), in the layout of the
  recorded daily files, for the replay to serve in Deribit's JSON shape.
* :func:`synthetic_trades_table` returns the same trades (same ``day``/``n_trades``/``seed``
  give the same rows) straight in the lake schema
  (:data:`~mkt_platform.defs.deribit.contract.OPTION_TRADE_LAKE_SCHEMA`), with schema
  metadata ``{"synthetic": "true"}``, for benchmarks that write Parquet directly.

What the trades look like: timestamps spread uniformly over the UTC day, ascending, with
about 8% sharing the millisecond of the previous trade (as block trades and sweeps do);
an index that random-walks from about 40,000 USD at 60% annual volatility; 6-9 expiries
after the day (the next two dailies, three weeklies, two monthlies and two quarterlies),
strikes on Deribit-like grids around the index; Black-Scholes prices in BTC on a 0.0001
tick from an IV smile of 30-150%; amounts in multiples of 0.1 contract; trade ids unique
and increasing with time (numeric, from 3,000,000,000 up, far from real BTC ids); and
``trade_seq`` consecutive per instrument. Generation is vectorised (numpy/pyarrow):
200,000 trades take about a second, writing included (plus pyarrow's one-off start-up).
"""

from __future__ import annotations

import calendar
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mkt_platform.defs.deribit.contract import OPTION_TRADE_LAKE_SCHEMA
from mkt_platform.defs.deribit.instruments import EXPIRY_HOUR_UTC, MONTHS

SYNTHETIC_FILE_PREFIX = "SYNTHETIC_deribit_trades_"
SYNTHETIC_METADATA = {b"synthetic": b"true"}
#: Synthetic trade ids start here (real BTC ids were ~2e8 in 2022), 10M ids per day.
SYNTHETIC_TRADE_ID_BASE = 3_000_000_000
_IDS_PER_DAY = 10_000_000
_ID_EPOCH = date(2020, 1, 1)

_DAY_MS = 86_400_000
_YEAR_MS = 365 * _DAY_MS
_WRITE_CHUNK = 50_000
_SAME_MS_SHARE = 0.08
_ANNUAL_VOL = 0.6


def synthetic_file_name(day: date, currency: str = "BTC", kind: str = "option") -> str:
    """``SYNTHETIC_deribit_trades_{currency}_{kind}_{YYYY-MM-DD}.jsonl``."""
    return f"{SYNTHETIC_FILE_PREFIX}{currency}_{kind}_{day.isoformat()}.jsonl"


def write_synthetic_trades(out_path: Path | str, day: date, n_trades: int, seed: int) -> Path:
    """Write ``n_trades`` SYNTHETIC BTC option trades of ``day`` as Deribit JSON lines.

    Args:
        out_path: a directory (the file gets :func:`synthetic_file_name`), or the file path
            itself, whose name must contain ``SYNTHETIC``.
        day: the UTC day the trades fall in.
        n_trades: how many trades (0 .. 9,999,999).
        seed: random seed; the same ``(day, n_trades, seed)`` always gives the same file.

    Returns:
        The path written. The file is written in chunks to a temporary name, then renamed,
        so a reader never sees half a file.

    Raises:
        ValueError: ``n_trades`` out of range, or a file name without ``SYNTHETIC``.
    """
    out = Path(out_path)
    path = out / synthetic_file_name(day) if out.is_dir() else out
    if "SYNTHETIC" not in path.name:
        raise ValueError(f"synthetic trade files must be labelled SYNTHETIC, got {path.name!r}")
    trades = _generate(day, n_trades, seed)
    lines = _json_lines(trades)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8", newline="\n") as fh:
            for start in range(0, len(lines), _WRITE_CHUNK):
                chunk = lines.slice(start, _WRITE_CHUNK).to_pylist()
                fh.write("\n".join(chunk))
                fh.write("\n")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


#: Candle length of each DVOL resolution the generator writes, seconds.
_DVOL_RESOLUTION_S = {"1D": 86_400, "3600": 3_600}


def write_synthetic_volatility_index(
    out_dir: Path | str,
    currency: str,
    first_day: date,
    last_day: date,
    resolution: str = "3600",
    seed: int = 0,
) -> Path:
    """Write SYNTHETIC DVOL candles of ``currency`` for the UTC days ``first_day`` ..
    ``last_day`` at ``resolution``: generated, never market data.

    The file is ``SYNTHETIC_dvol_{currency}_{resolution}_{first}_to_{last}.csv`` in
    ``out_dir``, laid out as the recorded daily files (``date,symbol,open,high,low,close``,
    newest first, values in percent on a 0.01 grid) except that ``date`` is the candle's UTC
    start as ``YYYY-MM-DD HH:MM:SS``. The index random-walks from about 55 (log steps of 1.5 %
    of the level per hour's square root); each candle opens at the previous close, as
    Deribit's hourly candles mostly do; high and low straddle open and close. The replay
    (:mod:`mkt_platform.replay.deribit_dvol`) serves the file with a SYNTHETIC warning.

    Returns:
        The path, written to a temporary name and renamed (never half a file).

    Raises:
        ValueError: a resolution other than ``1D`` or ``3600``, or ``last_day`` before
            ``first_day``.
    """
    if resolution not in _DVOL_RESOLUTION_S:
        raise ValueError(f"synthetic DVOL: resolution {resolution!r} is not one of 1D, 3600")
    if last_day < first_day:
        raise ValueError(f"synthetic DVOL: last day {last_day} is before {first_day}")
    step = _DVOL_RESOLUTION_S[resolution]
    first = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    n = ((last_day - first_day).days + 1) * 86_400 // step
    rng = np.random.default_rng(seed)
    scale = 0.015 * np.sqrt(step / 3_600)
    closes = np.round(55.0 * np.exp(np.cumsum(rng.normal(0.0, scale, n))) * 100).astype(np.int64)
    opens = np.concatenate([[5_500], closes[:-1]])
    spread = np.round(np.abs(rng.normal(0.0, scale, (2, n))) * closes * 100).astype(np.int64)
    highs = np.maximum(opens, closes) + spread[0]
    lows = np.maximum(np.minimum(opens, closes) - spread[1], 1)
    lines = ["date,symbol,open,high,low,close"]
    for i in reversed(range(n)):
        start = (first + timedelta(seconds=i * step)).strftime("%Y-%m-%d %H:%M:%S")
        values = ",".join(
            f"{v // 100}.{v % 100:02d}" for v in (opens[i], highs[i], lows[i], closes[i])
        )
        lines.append(f"{start},{currency},{values}")
    path = Path(out_dir) / (
        f"SYNTHETIC_dvol_{currency}_{resolution}_{first_day.isoformat()}_to_"
        f"{last_day.isoformat()}.csv"
    )
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def synthetic_trades_table(day: date, n_trades: int, seed: int) -> pa.Table:
    """The SYNTHETIC trades of :func:`write_synthetic_trades` as a lake table.

    Returns:
        A table with the columns and types of ``OPTION_TRADE_LAKE_SCHEMA`` (ascending by
        trade id), whose schema metadata also has ``synthetic: true``.
    """
    t = _generate(day, n_trades, seed)
    schema = OPTION_TRADE_LAKE_SCHEMA.with_metadata(
        {**(OPTION_TRADE_LAKE_SCHEMA.metadata or {}), **SYNTHETIC_METADATA}
    )
    names = pa.array(t.instrument_names, pa.string())
    columns = {
        "trade_id": pc.cast(pa.array(t.trade_id), pa.string()),
        "trade_seq": pa.array(t.trade_seq),
        "timestamp": pa.array(t.timestamp).cast(schema.field("timestamp").type),
        "instrument_name": names.take(pa.array(t.instrument)),
        "direction": pa.array(np.where(t.is_buy, "buy", "sell"), pa.string()),
        "price": _decimal_array(t.price_ticks, 4),
        "amount": _decimal_array(t.amount_tenths, 7),
        "iv": pa.array(t.iv_hundredths / 100.0),
        "mark_price": pa.array(t.mark_price_e8 / 1e8),
        "index_price": _decimal_array(t.index_cents, 6),
        "tick_direction": pa.array(t.tick_direction.astype(np.int32)),
        "expiry": pa.array(t.inst_expiry_ms[t.instrument]).cast(schema.field("expiry").type),
        "strike": _decimal_array(t.inst_strike[t.instrument], 8),
        "option_type": pa.array(np.where(t.inst_is_put[t.instrument], "P", "C"), pa.string()),
        # no block trades and no liquidations are generated
        "block_trade_id": pa.nulls(len(t.trade_id), pa.string()),
        "liquidation": pa.nulls(len(t.trade_id), pa.string()),
    }
    return pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema)


# -- generation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Trades:
    """Generated trades as integer arrays (exact decimals as scaled integers)."""

    trade_id: np.ndarray  # int64
    trade_seq: np.ndarray  # int64
    timestamp: np.ndarray  # int64 ms
    tick_direction: np.ndarray  # int64 0..3
    price_ticks: np.ndarray  # int64, units of 0.0001 BTC
    mark_price_e8: np.ndarray  # int64, units of 1e-8 BTC
    iv_hundredths: np.ndarray  # int64, units of 0.01 percent
    index_cents: np.ndarray  # int64, units of 0.01 USD
    amount_tenths: np.ndarray  # int64, units of 0.1 contract
    is_buy: np.ndarray  # bool
    instrument: np.ndarray  # int64 index into the inst_* arrays
    instrument_names: list[str]
    inst_expiry_ms: np.ndarray  # int64
    inst_strike: np.ndarray  # int64 USD
    inst_is_put: np.ndarray  # bool


def expiries_after(day: date) -> list[date]:
    """Deribit-like BTC option expiry dates strictly after ``day``: the next two dailies,
    the next three Friday weeklies, the next two month-end Fridays and the next two quarterly
    (Mar/Jun/Sep/Dec) month-end Fridays, ascending and without duplicates."""
    dates = {day + timedelta(days=1), day + timedelta(days=2)}
    friday = day + timedelta(days=(4 - day.weekday()) % 7 or 7)
    dates.update(friday + timedelta(weeks=w) for w in range(3))
    monthlies: list[date] = []
    quarterlies: list[date] = []
    year, month = day.year, day.month
    while len(monthlies) < 2 or len(quarterlies) < 2:
        last = _last_friday(year, month)
        if last > day:
            if len(monthlies) < 2:
                monthlies.append(last)
            if month % 3 == 0:
                quarterlies.append(last)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    dates.update(monthlies + quarterlies)
    return sorted(dates)


def _last_friday(year: int, month: int) -> date:
    last = date(year, month, calendar.monthrange(year, month)[1])
    return last - timedelta(days=(last.weekday() - 4) % 7)


def _strike_step(tenor_days: int) -> int:
    if tenor_days <= 2:
        return 500
    if tenor_days <= 35:
        return 1000
    return 5000


def _generate(day: date, n: int, seed: int) -> _Trades:
    if not 0 <= n < _IDS_PER_DAY:
        raise ValueError(f"n_trades must be in 0..{_IDS_PER_DAY - 1}, got {n}")
    rng = np.random.default_rng([seed, day.toordinal()])
    day_start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)

    # Times: uniform over the day, ascending; some trades share the previous millisecond.
    ts = day_start + np.sort(rng.integers(0, _DAY_MS, n, dtype=np.int64))
    same = rng.random(n) < _SAME_MS_SHARE
    if n:
        same[0] = False
    idx = np.flatnonzero(same)
    ts[idx] = ts.copy()[idx - 1]

    # Index: geometric random walk at _ANNUAL_VOL, rounded to cents.
    dt_years = np.diff(ts, prepend=day_start) / _YEAR_MS
    log_s = (
        np.log(40_000.0)
        + rng.normal(0.0, 0.05)
        + np.cumsum(_ANNUAL_VOL * np.sqrt(dt_years) * rng.standard_normal(n))
    )
    index_cents = np.rint(np.exp(log_s) * 100).astype(np.int64)
    spot = index_cents / 100.0

    # Expiry and strike per trade; near expiries trade most.
    expiries = expiries_after(day)
    expiry_ms = np.array(
        [
            int(datetime(e.year, e.month, e.day, EXPIRY_HOUR_UTC, tzinfo=UTC).timestamp() * 1000)
            for e in expiries
        ],
        dtype=np.int64,
    )
    steps = np.array([_strike_step((e - day).days) for e in expiries], dtype=np.int64)
    weights = 1.0 / np.arange(1, len(expiries) + 1)
    expiry_idx = rng.choice(len(expiries), size=n, p=weights / weights.sum())
    tenor = (expiry_ms[expiry_idx] - ts) / _YEAR_MS
    step = steps[expiry_idx]
    log_moneyness = rng.normal(0.0, 0.03 + 0.3 * np.sqrt(tenor))
    strike = np.clip(np.rint(spot * np.exp(log_moneyness) / step), 1, 9_999_999 // step)
    strike = strike.astype(np.int64) * step
    is_put = rng.random(n) < 0.45

    # IV smile (percent) and Black-Scholes prices in BTC (r = 0, inverse option).
    base_vol = rng.uniform(50.0, 75.0)
    k = np.log(strike / spot)
    iv = base_vol + 90.0 * np.abs(k) + 40.0 * k * k / np.sqrt(tenor) + rng.normal(0.0, 2.0, n)
    iv_hundredths = np.rint(np.clip(iv, 30.0, 150.0) * 100).astype(np.int64)
    sigma = iv_hundredths / 10_000.0
    value_btc = _black_scholes(spot, strike.astype(float), tenor, sigma, is_put) / spot
    mark_price_e8 = np.maximum(np.rint(value_btc * 1e8), 1).astype(np.int64)
    traded = value_btc * np.exp(rng.normal(0.0, 0.02, n))
    price_ticks = np.maximum(np.rint(traded * 10_000), 1).astype(np.int64)

    amount_tenths = np.clip(np.rint(np.exp(rng.normal(1.5, 1.2, n))), 1, 5_000).astype(np.int64)
    is_buy = rng.random(n) < 0.45

    # Instruments: unique (expiry, strike, type); per-instrument sequence and tick direction.
    key = (expiry_idx.astype(np.int64) * 10_000_000 + strike) * 2 + is_put
    unique_keys, instrument = np.unique(key, return_inverse=True)
    instrument = instrument.astype(np.int64)
    inst_is_put = (unique_keys % 2).astype(bool)
    inst_strike = (unique_keys // 2) % 10_000_000
    inst_expiry = unique_keys // 2 // 10_000_000
    names = [
        f"BTC-{_expiry_code(expiries[e])}-{s}-{'P' if p else 'C'}"
        for e, s, p in zip(
            inst_expiry.tolist(), inst_strike.tolist(), inst_is_put.tolist(), strict=True
        )
    ]
    trade_seq, tick_direction = _per_instrument(rng, instrument, len(names), price_ticks)

    id_base = SYNTHETIC_TRADE_ID_BASE + (day - _ID_EPOCH).days * _IDS_PER_DAY
    return _Trades(
        trade_id=id_base + np.arange(1, n + 1, dtype=np.int64),
        trade_seq=trade_seq,
        timestamp=ts,
        tick_direction=tick_direction,
        price_ticks=price_ticks,
        mark_price_e8=mark_price_e8,
        iv_hundredths=iv_hundredths,
        index_cents=index_cents,
        amount_tenths=amount_tenths,
        is_buy=is_buy,
        instrument=instrument,
        instrument_names=names,
        inst_expiry_ms=expiry_ms[inst_expiry],
        inst_strike=inst_strike,
        inst_is_put=inst_is_put,
    )


def _expiry_code(expiry: date) -> str:
    return f"{expiry.day}{MONTHS[expiry.month - 1]}{expiry.year % 100:02d}"


def _per_instrument(
    rng: np.random.Generator, instrument: np.ndarray, n_instruments: int, price: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive ``trade_seq`` per instrument (from a random start) and Deribit's tick
    direction (0 plus, 1 zero-plus, 2 minus, 3 zero-minus) against the instrument's previous
    trade; an instrument's first trade of the day gets a random tick direction."""
    n = len(instrument)
    order = np.argsort(instrument, kind="stable")  # by instrument, then time
    sorted_inst = instrument[order]
    first = np.ones(n, dtype=bool)
    first[1:] = sorted_inst[1:] != sorted_inst[:-1]
    group_start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
    seq_start = rng.integers(1, 5_000, n_instruments, dtype=np.int64)
    trade_seq = np.empty(n, dtype=np.int64)
    trade_seq[order] = seq_start[sorted_inst] + np.arange(n) - group_start

    sorted_price = price[order]
    first_tick = rng.integers(0, 4, n)
    sign = np.zeros(n, dtype=np.int64)
    sign[1:] = np.sign(sorted_price[1:] - sorted_price[:-1])
    sign[first] = np.where(first_tick[first] < 2, 1, -1)  # ticks 0/1 follow an up-move
    last_move = sign[np.maximum.accumulate(np.where(sign != 0, np.arange(n), 0))]
    tick = np.where(sign > 0, 0, np.where(sign < 0, 2, np.where(last_move > 0, 1, 3)))
    tick = np.where(first, first_tick, tick)
    tick_direction = np.empty(n, dtype=np.int64)
    tick_direction[order] = tick
    return trade_seq, tick_direction


def _black_scholes(
    spot: np.ndarray, strike: np.ndarray, tenor: np.ndarray, sigma: np.ndarray, is_put: np.ndarray
) -> np.ndarray:
    vol_t = sigma * np.sqrt(tenor)
    d1 = (np.log(spot / strike) + 0.5 * vol_t * vol_t) / vol_t
    d2 = d1 - vol_t
    call = spot * _norm_cdf(d1) - strike * _norm_cdf(d2)
    put = call - spot + strike  # put-call parity, r = 0
    return np.maximum(np.where(is_put, put, call), 0.0)


def _norm_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF via erf (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7)."""
    z = np.abs(x) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    erf = 1.0 - poly * np.exp(-z * z)
    return 0.5 * (1.0 + np.sign(x) * erf)


# -- serialisation --------------------------------------------------------------------------


def _decimal_array(unscaled: np.ndarray, shift: int) -> pa.Array:
    """decimal128(38, 8) values ``unscaled * 10**shift * 1e-8`` (non-negative int64 input)."""
    values = np.asarray(unscaled, dtype=np.int64) * np.int64(10**shift)
    words = np.zeros((len(values), 2), dtype=np.int64)
    words[:, 0] = values  # little-endian 128-bit: low word, then high word (0: non-negative)
    return pa.Array.from_buffers(
        OPTION_TRADE_LAKE_SCHEMA.field("price").type, len(values), [None, pa.py_buffer(words)]
    )


def _number_text(unscaled: np.ndarray, decimals: int) -> pa.Array:
    """JSON number texts of ``unscaled / 10**decimals``: exact, trailing zeros dropped but
    always with a decimal point (``0.0165``, ``10.0``), as Deribit writes its floats."""
    text = pc.cast(_decimal_array(unscaled, 8 - decimals), pa.string())
    text = pc.replace_substring_regex(text, r"0+$", "")
    return pc.replace_substring_regex(text, r"\.$", ".0")


def _json_lines(t: _Trades) -> pa.Array:
    """One compact JSON object per trade, in Deribit's field order."""
    names = pa.array(t.instrument_names, pa.string()).take(pa.array(t.instrument))
    amount = _number_text(t.amount_tenths, 1)
    parts = [
        '{"trade_seq":',
        pc.cast(pa.array(t.trade_seq), pa.string()),
        ',"trade_id":"',
        pc.cast(pa.array(t.trade_id), pa.string()),
        '","timestamp":',
        pc.cast(pa.array(t.timestamp), pa.string()),
        ',"tick_direction":',
        pc.cast(pa.array(t.tick_direction), pa.string()),
        ',"price":',
        _number_text(t.price_ticks, 4),
        ',"mark_price":',
        _number_text(t.mark_price_e8, 8),
        ',"iv":',
        _number_text(t.iv_hundredths, 2),
        ',"instrument_name":"',
        names,
        '","index_price":',
        _number_text(t.index_cents, 2),
        ',"direction":"',
        pa.array(np.where(t.is_buy, "buy", "sell"), pa.string()),
        '","amount":',
        amount,
        ',"contracts":',
        amount,
        "}",
    ]
    return pc.binary_join_element_wise(
        *[pa.scalar(p) if isinstance(p, str) else p for p in parts], ""
    )
