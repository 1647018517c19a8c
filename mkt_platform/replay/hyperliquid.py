"""Replay of Hyperliquid's info API (``POST /info``) from recorded real responses.

Emulated endpoint (live: ``POST https://api.hyperliquid.xyz/info`` with a JSON body whose
``type`` selects the request, see
https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/info-endpoint):

* ``{"type": "candleSnapshot", "req": {"coin", "interval", "startTime", "endTime"}}``: the
  candles whose interval overlaps ``[startTime, endTime]`` (ms), ascending, at most 5000.
  The first candle is the one *containing* ``startTime`` (it may open before it).
* ``{"type": "fundingHistory", "coin", "startTime", "endTime"?}``: funding records
  ``{coin, fundingRate, premium, time}`` with ``startTime <= time <= endTime``, ascending, at
  most 500 (the live API's page size: clients paginate by time).
* ``{"type": "meta"}``: the perp universe. ``{"type": "metaAndAssetCtxs"}``: ``[meta, ctxs]``.

Recordings (``shared/data/hyperliquid``, see ``SOURCES.md`` sections 4 and 5):

* ``vcr_*.yaml``: VCR cassettes of the official Python SDK's tests. Each interaction's
  response body is the raw string the API sent; candle and funding records are only ever
  re-serialised compactly from values that are JSON strings and ints (floats are refused), so
  what is served has the recorded values exactly. Every cassette starts with the same
  ``{"type": "meta"}`` answer: the 28-coin universe of 2023-07-17.
  ``candleSnapshot``: kPEPE 1h only, 24 candles of 2023-05-21 20:00 .. 2023-05-22 19:00.
  ``fundingHistory``: BTC only, 1038 records of 2023-05-12 .. 2023-07-17 21:00 (asked from
  2023-04-19 on, so nothing happened before 2023-05-12; there was no 500 cap in 2023: the
  whole history came in one response).
* ``ws_allDexsAssetCtxs_snapshot_2026.json``: one websocket ``allDexsAssetCtxs`` push with
  the asset contexts of every dex. The contexts carry no coin names: they follow the perp
  meta universe, which is append-only, so context *i* of the main dex (key ``""``) is coin
  *i* of the 2023 meta. ``metaAndAssetCtxs`` therefore pairs the 2023 meta with the first 28
  main-dex contexts (index 0 has markPx 77562.0, a BTC price; index 1 2123.7, ETH). The
  capture time of these contexts is unknown (committed upstream 2026-05-30): the pairing is
  sound for names but the answer is a mix of a 2023 universe and 2026 market state. Three of
  the 28 (MATIC, RNDR, FTM: indices 3, 20, 22) are delisted by then: ``premium``, ``midPx``
  and ``impactPxs`` are ``null`` and open interest is 0.
* ``freqtrade_hyperliquid_{BTC,ETH,SOL,HYPE}_USDC-1h-{perp,funding}.json`` and
  ``freqtrade_hyperliquid_HYPE_USDC-1h-spot.json`` (section 10, **converted**): freqtrade's
  download (ccxt, from ``candleSnapshot`` and ``fundingHistory``) of 2025-07-26, as JSON
  numbers. ccxt had already turned Hyperliquid's decimal strings into floats; the replay
  writes each float back as the shortest decimal that reads back as the same float, in
  positional notation (never an exponent: ``1.25e-05`` is sent as ``"0.0000125"``) with
  ``.0`` on integral values, as Hyperliquid writes them (``"520665683.0"`` in the kPEPE
  cassette). That is exact: every recorded value has at most 10 significant digits (prices
  up to 4 decimals, volumes 5, funding rates 10), and a value of more than 15 is refused.

  * Perp candles ``[open_ms, o, h, l, c, v]``: 1h, BTC/ETH/SOL 2024-09-04 11:00 ..
    2025-07-26 03:00, HYPE 2024-12-05 09:00 .. 2025-07-26 04:00 (UTC open times). Served as
    Hyperliquid's candle object: ``t`` the recorded open time; ``T = t + 3599999``,
    ``s`` the coin and ``i`` ``"1h"``, which are Hyperliquid's own rule (every kPEPE candle
    of the cassette has ``T = t + interval - 1`` and ``s``/``i`` equal to the request's
    coin/interval); ``n`` (number of trades) is ``null``: freqtrade did not keep it.
  * HYPE spot candles (HYPE/USDC, 2024-11-29 07:00 .. 2025-07-26 03:00) are served the same
    way under Hyperliquid's spot coin name ``@107`` (spot pair index 107 of Hyperliquid's
    ``spotMeta`` is HYPE/USDC; the platform's instrument list spells the pair that way, and
    its ``hyperliquid_candles_1h`` dataset collects spot pairs).
  * Funding ``[ms, rate]``: BTC/ETH/SOL 2023-05-12 .. 2025-07-26 03:00, HYPE 2024-12-05
    10:00 .. 2025-07-26 04:00. Served as ``{coin, fundingRate, premium, time}`` with
    ``time`` the recorded ms (Hyperliquid's own funding time, jitter included) and
    ``premium`` ``null``: freqtrade did not keep it.

  **Cassette and freqtrade overlap** (BTC funding): inside the span of a cassette's records
  of a coin (for BTC funding 2023-05-12 00:00:00.048 .. 2023-07-17 21:00:00.065, both
  inclusive) only the cassette is served, the API's own bytes (8-decimal rates, premium
  set); the freqtrade file serves only the times outside that span (from 2023-07-17
  22:00 on: 10-decimal rates, premium ``null``). In the span the two agree time for time
  (every rate within 5e-9, SOURCES.md section 10); the freqtrade rows there are dropped,
  never mixed in. A page whose range crosses the span's end therefore holds cassette
  records, then freqtrade records: the change shows as ``premium`` turning ``null``. The
  same rule would apply to candles; no candle series is recorded twice today.

A gap in the recordings never looks like real (empty) market data: a coin (or coin and
interval) with no recording answers HTTP 404 ``{"error": "replay: no recording of ..."}``.
A time range of a *recorded* coin outside its recording answers ``[]``, like a range with
no trades would; tests must stay inside the recorded ranges above.

SYNTHETIC candles: files ``SYNTHETIC_candleSnapshot_{coin}_{interval}_{start}_{end}.json``
(written by :mod:`mkt_platform.testing.synthetic_hyperliquid`) in ``data_dir``, in
``data_dir/synthetic/`` or in the optional ``synthetic_dir`` are served for coin/intervals
that have **no** real recording (a real recording always wins; the two are never merged).
They are for benchmarks and scale tests only; serving them logs a WARNING, once per coin,
that says SYNTHETIC.

Errors are the replay's own wording, ``{"error": "..."}`` JSON: 400 for a body that is not
JSON or an unknown/invalid request, 405 for a method other than POST, 404 for other paths.
(The live API answers a body it cannot deserialise with HTTP 422 and the plain-text body
``Failed to deserialize the JSON body into the target type``.)
"""

from __future__ import annotations

import bisect
import json
import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from mkt_platform.replay.server import Response

SYNTHETIC_PREFIX = "SYNTHETIC_candleSnapshot_"
#: SYNTHETIC candle files (written by the tests' generator
#: :mod:`mkt_platform.testing.synthetic_hyperliquid`):
#: ``SYNTHETIC_candleSnapshot_{coin}_{interval}_{start}_{end}.json`` (the coin may contain "_").
SYNTHETIC_FILE_RE = re.compile(
    r"^SYNTHETIC_candleSnapshot_(?P<coin>.+)_(?P<interval>[0-9]+[mhdwM])_"
    r"(?P<start>[0-9]+)_(?P<end>[0-9]+)\.json$"
)

logger = logging.getLogger(__name__)

INFO_PATH = "/info"
#: Most candles one ``candleSnapshot`` answers.
MAX_CANDLES = 5000
#: Most records one ``fundingHistory`` answers (the live API's page size).
MAX_FUNDING = 500
#: Every interval ``candleSnapshot`` accepts.
INTERVALS = frozenset(
    {"1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "8h", "12h", "1d", "3d", "1w", "1M"}
)
ASSET_CTXS_FILE = "ws_allDexsAssetCtxs_snapshot_2026.json"
#: freqtrade recordings (SOURCES.md section 10):
#: ``freqtrade_hyperliquid_{BASE}_USDC-1h-{perp,spot,funding}.json``.
FREQTRADE_FILE_RE = re.compile(
    r"^freqtrade_hyperliquid_(?P<base>[A-Za-z0-9]+)_USDC-(?P<interval>1h)-"
    r"(?P<kind>perp|spot|funding)\.json$"
)
#: Hyperliquid's spot coin name of a freqtrade spot pair (HYPE/USDC is spot pair @107).
SPOT_COINS = {"HYPE": "@107"}
#: Interval lengths of the freqtrade candle files, ms.
_FREQTRADE_INTERVAL_MS = {"1h": 3_600_000}
# More significant digits than this and a float's shortest repr might not be the decimal
# Hyperliquid sent (float64 keeps 15 exactly): such a value is refused, never rounded.
_MAX_DIGITS = 15
# Keys of a candle and of a funding record, and which of them are ints on the wire.
_CANDLE_KEYS = frozenset("tTsiochlvn")
_CANDLE_INTS = frozenset("tTn")
_FUNDING_KEYS = frozenset({"coin", "fundingRate", "premium", "time"})
# libyaml's loader when available: the pure-Python one takes ~0.5 s on the funding cassette.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class InfoError(Exception):
    """A request the replay refuses; becomes an ``{"error": ...}`` body."""

    def __init__(self, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.msg, self.status = msg, status

    def response(self) -> Response:
        return Response.json({"error": self.msg}, self.status)


@dataclass(frozen=True)
class _Candles:
    """One coin/interval: open and close times and the serialised candles, ascending."""

    open_times: list[int]
    close_times: list[int]
    rows_json: list[str]
    synthetic: bool


@dataclass(frozen=True)
class _Funding:
    """One coin's funding records: times and serialised records, ascending."""

    times: list[int]
    rows_json: list[str]


@dataclass
class _Recordings:
    """Everything read from the cassettes, the freqtrade files and the asset-context file."""

    meta_body: str | None
    candles: dict[tuple[str, str], _Candles]
    funding: dict[str, _Funding]
    synthetic_files: dict[tuple[str, str], list[Path]]
    # Real series not built yet (the freqtrade files are converted on first use): the
    # cassette's records and the freqtrade file, by (coin, interval) and by coin.
    pending_candles: dict[tuple[str, str], tuple[list[dict[str, Any]], Path | None]]
    pending_funding: dict[str, tuple[list[dict[str, Any]], Path | None]]


class HyperliquidHandler:
    """Answers Hyperliquid ``POST /info`` requests from the recordings in ``data_dir``.

    Args:
        data_dir: folder with the ``vcr_*.yaml`` cassettes, the ``freqtrade_hyperliquid_*``
            files and the asset-context file (``shared/data/hyperliquid``); SYNTHETIC candle
            files here or in ``synthetic/`` are served too.
        synthetic_dir: an extra folder of SYNTHETIC candle files (benchmarks write there).

    Cassettes are read on the first request; freqtrade and synthetic files are converted
    on first use of their coin (and interval). Everything is cached for the life of the
    handler.
    """

    def __init__(self, data_dir: Path | str, synthetic_dir: Path | str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.synthetic_dirs = [self.data_dir, self.data_dir / "synthetic"]
        if synthetic_dir is not None:
            self.synthetic_dirs.append(Path(synthetic_dir))
        self._lock = threading.Lock()
        self._recordings: _Recordings | None = None
        self._asset_ctxs_body: str | None = None
        self._warned_synthetic: set[str] = set()

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> Response:
        if path.rstrip("/") != INFO_PATH:
            return InfoError(f"replay: hyperliquid has no route {method} {path}", 404).response()
        if method != "POST":
            return Response.json(
                {"error": f"replay: hyperliquid {INFO_PATH} only answers POST"},
                405,
                {"Allow": "POST"},
            )
        try:
            return self._info(_parse_body(body))
        except InfoError as err:
            return err.response()

    def _info(self, request: dict[str, Any]) -> Response:
        kind = request.get("type")
        if kind == "candleSnapshot":
            return self._candle_snapshot(request)
        if kind == "fundingHistory":
            return self._funding_history(request)
        if kind == "meta":
            return Response.raw_json(self._meta_body().encode())
        if kind == "metaAndAssetCtxs":
            return Response.raw_json(self._meta_and_asset_ctxs_body().encode())
        # The replay's wording (the live API answers 422 with a plain-text message).
        raise InfoError(f"replay: unknown or unsupported info type {kind!r}")

    # -- request types -------------------------------------------------------------------

    def _candle_snapshot(self, request: dict[str, Any]) -> Response:
        req = request.get("req")
        if not isinstance(req, dict):
            raise InfoError("replay: candleSnapshot needs a 'req' object")
        coin = _field(req, "coin", str)
        interval = _field(req, "interval", str)
        start = _field(req, "startTime", int)
        end = _field(req, "endTime", int)
        if interval not in INTERVALS:
            raise InfoError(f"replay: invalid interval {interval!r}")
        series = self._candles(coin, interval)
        # Candles overlapping [start, end]: close >= start and open <= end.
        first = bisect.bisect_left(series.close_times, start)
        last = min(bisect.bisect_right(series.open_times, end), first + MAX_CANDLES)
        return Response.raw_json(_array(series.rows_json[first : max(first, last)]))

    def _funding_history(self, request: dict[str, Any]) -> Response:
        coin = _field(request, "coin", str)
        start = _field(request, "startTime", int)
        end = _field(request, "endTime", int, optional=True)
        recordings = self._load()
        with self._lock:
            if coin in recordings.pending_funding:
                rows, path = recordings.pending_funding.pop(coin)
                freqtrade = _freqtrade_funding_rows(path, coin) if path else []
                recordings.funding[coin] = _funding_series(_cassette_wins(rows, freqtrade, "time"))
            funding = recordings.funding.get(coin)
        if funding is None:
            raise InfoError(f"replay: no recording of fundingHistory coin={coin}", 404)
        first = bisect.bisect_left(funding.times, start)
        last = len(funding.times) if end is None else bisect.bisect_right(funding.times, end)
        last = min(last, first + MAX_FUNDING)
        return Response.raw_json(_array(funding.rows_json[first : max(first, last)]))

    def _meta_body(self) -> str:
        body = self._load().meta_body
        if body is None:
            raise InfoError("replay: no recording of meta", 404)
        return body

    def _meta_and_asset_ctxs_body(self) -> str:
        meta_body = self._meta_body()
        with self._lock:
            if self._asset_ctxs_body is None:
                universe = json.loads(meta_body)["universe"]
                ctxs = _main_dex_ctxs(self.data_dir / ASSET_CTXS_FILE)
                if len(ctxs) < len(universe):
                    raise ValueError(
                        f"{ASSET_CTXS_FILE}: {len(ctxs)} main-dex contexts for a "
                        f"{len(universe)}-coin meta"
                    )
                # Values are strings, null or arrays of strings: compact re-serialisation
                # keeps them exactly.
                ctxs_json = json.dumps(ctxs[: len(universe)], separators=(",", ":"))
                self._asset_ctxs_body = f"[{meta_body},{ctxs_json}]"
            return self._asset_ctxs_body

    # -- recordings ----------------------------------------------------------------------

    def _candles(self, coin: str, interval: str) -> _Candles:
        recordings = self._load()
        key = (coin, interval)
        with self._lock:
            if key in recordings.pending_candles:
                rows, path = recordings.pending_candles.pop(key)
                freqtrade = _freqtrade_candle_rows(path, coin, interval) if path else []
                recordings.candles[key] = _candle_series(
                    _cassette_wins(rows, freqtrade, "t"), synthetic=False
                )
            if key not in recordings.candles:
                paths = recordings.synthetic_files.get(key)
                if not paths:
                    raise InfoError(
                        f"replay: no recording of candleSnapshot coin={coin} interval={interval}",
                        404,
                    )
                recordings.candles[key] = _load_synthetic(paths, coin, interval)
            series = recordings.candles[key]
            if series.synthetic and coin not in self._warned_synthetic:
                self._warned_synthetic.add(coin)
                logger.warning(
                    "replay: serving SYNTHETIC Hyperliquid candles for %s (not market data; "
                    "benchmarks and scale tests only)",
                    coin,
                )
            return series

    def _load(self) -> _Recordings:
        with self._lock:
            if self._recordings is None:
                self._recordings = self._read_recordings()
            return self._recordings

    def _read_recordings(self) -> _Recordings:
        if not self.data_dir.is_dir():
            logger.warning("replay: no Hyperliquid recordings, %s does not exist", self.data_dir)
        meta_body: str | None = None
        candle_rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
        funding_rows: dict[str, list[dict[str, Any]]] = {}
        freqtrade_candles, freqtrade_funding = _read_freqtrade(self.data_dir)
        for path in sorted(self.data_dir.glob("vcr_*.yaml")):
            for request, body in _interactions(path):
                kind = request.get("type")
                if kind == "meta":
                    if meta_body is not None and json.loads(meta_body) != json.loads(body):
                        raise ValueError(f"{path}: meta differs from another cassette's")
                    meta_body = meta_body or body
                elif kind == "candleSnapshot":
                    req = request["req"]
                    rows = _records(path, body, _CANDLE_KEYS, _CANDLE_INTS)
                    for row in rows:
                        if (row["s"], row["i"]) != (req["coin"], req["interval"]):
                            raise ValueError(f"{path}: candle {row} is not {req}")
                    candle_rows.setdefault((req["coin"], req["interval"]), []).extend(rows)
                elif kind == "fundingHistory":
                    rows = _records(path, body, _FUNDING_KEYS, frozenset({"time"}))
                    for row in rows:
                        if row["coin"] != request["coin"]:
                            raise ValueError(f"{path}: funding record {row} is not {request}")
                    funding_rows.setdefault(request["coin"], []).extend(rows)
        synthetic: dict[tuple[str, str], list[Path]] = {}
        for folder in dict.fromkeys(self.synthetic_dirs):
            for path in sorted(folder.glob(SYNTHETIC_PREFIX + "*.json")):
                match = SYNTHETIC_FILE_RE.match(path.name)
                if match is None or match["interval"] not in INTERVALS:
                    logger.debug("replay: ignoring %s (not a SYNTHETIC candle file name)", path)
                    continue
                synthetic.setdefault((match["coin"], match["interval"]), []).append(path)
        return _Recordings(
            meta_body=meta_body,
            candles={},
            funding={},
            synthetic_files=synthetic,
            pending_candles={
                key: (candle_rows.get(key, []), freqtrade_candles.get(key))
                for key in candle_rows.keys() | freqtrade_candles.keys()
            },
            pending_funding={
                coin: (funding_rows.get(coin, []), freqtrade_funding.get(coin))
                for coin in funding_rows.keys() | freqtrade_funding.keys()
            },
        )


def _read_freqtrade(
    data_dir: Path,
) -> tuple[dict[tuple[str, str], Path], dict[str, Path]]:
    """The freqtrade recordings' files: candles by (coin, interval), funding by coin."""
    candles: dict[tuple[str, str], Path] = {}
    funding: dict[str, Path] = {}
    for path in sorted(data_dir.glob("freqtrade_hyperliquid_*.json")):
        match = FREQTRADE_FILE_RE.match(path.name)
        if match is None:
            logger.debug("replay: ignoring %s (not a freqtrade Hyperliquid file name)", path)
            continue
        base, interval, kind = match["base"], match["interval"], match["kind"]
        if kind == "funding":
            funding[base] = path
            continue
        coin = SPOT_COINS.get(base) if kind == "spot" else base
        if coin is None:
            logger.debug("replay: ignoring %s (no Hyperliquid spot coin name for %s)", path, base)
            continue
        candles[(coin, interval)] = path
    return candles, funding


def _json_array(path: Path) -> list[Any]:
    rows = json.loads(path.read_bytes())
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON array")
    return rows


def _freqtrade_candle_rows(path: Path, coin: str, interval: str) -> list[dict[str, Any]]:
    """A freqtrade candle file as Hyperliquid candles (see the module docstring)."""
    rows = _json_array(path)
    return [_freqtrade_candle(path, i, coin, interval, row) for i, row in enumerate(rows)]


def _freqtrade_funding_rows(path: Path, coin: str) -> list[dict[str, Any]]:
    """A freqtrade funding file as Hyperliquid funding records (see the module docstring)."""
    return [_freqtrade_funding(path, i, coin, row) for i, row in enumerate(_json_array(path))]


def _freqtrade_candle(path: Path, index: int, coin: str, interval: str, row: Any) -> dict[str, Any]:
    """A freqtrade ``[open_ms, o, h, l, c, v]`` row as Hyperliquid's candle object, in the
    key order Hyperliquid sends; ``n`` (not kept by freqtrade) is null."""
    step = _FREQTRADE_INTERVAL_MS[interval]
    if not (isinstance(row, list) and len(row) == 6 and type(row[0]) is int and row[0] % step == 0):
        raise ValueError(f"{path}: row {index} is not a freqtrade {interval} candle: {row!r}")
    o, h, low, c, v = (_decimal_string(path, index, value) for value in row[1:])
    t = row[0]
    return {
        "T": t + step - 1,
        "c": c,
        "h": h,
        "i": interval,
        "l": low,
        "n": None,
        "o": o,
        "s": coin,
        "t": t,
        "v": v,
    }


def _freqtrade_funding(path: Path, index: int, coin: str, row: Any) -> dict[str, Any]:
    """A freqtrade ``[ms, rate]`` row as Hyperliquid's funding record; ``premium`` (not
    kept by freqtrade) is null."""
    if not (isinstance(row, list) and len(row) == 2 and type(row[0]) is int):
        raise ValueError(f"{path}: row {index} is not a freqtrade funding record: {row!r}")
    rate = _decimal_string(path, index, row[1])
    return {"coin": coin, "fundingRate": rate, "premium": None, "time": row[0]}


def _decimal_string(path: Path, index: int, value: Any) -> str:
    """A recorded JSON number as Hyperliquid's decimal string: the shortest decimal that
    reads back as the same float, positional, with ``.0`` on an integral value.

    Raises:
        ValueError: not a number, or more significant digits than a float keeps exactly.
    """
    if type(value) not in (int, float):
        raise ValueError(f"{path}: row {index} has a non-numeric value {value!r}")
    exact = Decimal(repr(float(value)))
    if not exact.is_finite() or len(exact.as_tuple().digits) > _MAX_DIGITS:
        raise ValueError(f"{path}: row {index} value {value!r} cannot be written exactly")
    text = format(exact, "f")
    return text if "." in text else text + ".0"


def _cassette_wins(
    cassette: list[dict[str, Any]], freqtrade: list[dict[str, Any]], time_key: str
) -> list[dict[str, Any]]:
    """The cassette's records, plus the freqtrade records outside the cassette's time span
    (the overlap rule of the module docstring)."""
    if not cassette:
        return freqtrade
    times = [row[time_key] for row in cassette]
    first, last = min(times), max(times)
    return cassette + [row for row in freqtrade if not first <= row[time_key] <= last]


def _interactions(path: Path) -> Iterable[tuple[dict[str, Any], str]]:
    """(decoded request body, raw response body string) of each successful POST /info."""
    cassette = yaml.load(path.read_text(), Loader=_YAML_LOADER)
    for interaction in cassette.get("interactions", []):
        request, response = interaction["request"], interaction["response"]
        if request.get("method") != "POST" or not str(request.get("uri", "")).endswith(INFO_PATH):
            continue
        if response["status"]["code"] != 200:
            continue
        yield json.loads(request["body"]), response["body"]["string"]


def _records(
    path: Path, body: str, keys: frozenset[str], int_keys: frozenset[str]
) -> list[dict[str, Any]]:
    """The recorded array of objects, checked to hold only strings and ints (so that
    re-serialising a record cannot change a value)."""
    rows = json.loads(body)
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON array, got {type(rows).__name__}")
    for index, row in enumerate(rows):
        ok = isinstance(row, dict) and set(row) == keys
        if ok:
            for key, value in row.items():
                is_int = type(value) is int
                if (key in int_keys and not is_int) or (
                    key not in int_keys and type(value) is not str
                ):
                    ok = False
                    break
        if not ok:
            raise ValueError(f"{path}: record {index} is not as expected: {row!r}")
    return rows


def _candle_series(rows: list[dict[str, Any]], synthetic: bool) -> _Candles:
    by_open: dict[int, dict[str, Any]] = {}
    for row in rows:
        previous = by_open.setdefault(row["t"], row)
        if previous != row:
            raise ValueError(f"candle at open time {row['t']} differs between recordings")
    opens = sorted(by_open)
    return _Candles(
        open_times=opens,
        close_times=[by_open[t]["T"] for t in opens],
        rows_json=[json.dumps(by_open[t], separators=(",", ":")) for t in opens],
        synthetic=synthetic,
    )


def _funding_series(rows: list[dict[str, Any]]) -> _Funding:
    by_time: dict[int, dict[str, Any]] = {}
    for row in rows:
        previous = by_time.setdefault(row["time"], row)
        if previous != row:
            raise ValueError(f"funding record at {row['time']} differs between recordings")
    times = sorted(by_time)
    return _Funding(times, [json.dumps(by_time[t], separators=(",", ":")) for t in times])


def _load_synthetic(paths: list[Path], coin: str, interval: str) -> _Candles:
    rows: list[dict[str, Any]] = []
    for path in paths:
        for row in _records(path, path.read_text(), _CANDLE_KEYS, _CANDLE_INTS):
            if (row["s"], row["i"]) != (coin, interval):
                raise ValueError(f"{path}: candle {row} is not {coin} {interval}")
            rows.append(row)
    logger.debug("replay: loaded %d SYNTHETIC candles from %s", len(rows), paths)
    return _candle_series(rows, synthetic=True)


def _main_dex_ctxs(path: Path) -> list[dict[str, Any]]:
    """The main dex's (``""``) asset contexts of an ``allDexsAssetCtxs`` websocket message."""
    message = json.loads(path.read_text())
    for dex, ctxs in message["data"]["ctxs"]:
        if dex == "":
            return ctxs
    raise ValueError(f"{path}: no main-dex ('') asset contexts")


def _parse_body(body: bytes) -> dict[str, Any]:
    try:
        request = json.loads(body)
    except ValueError as exc:
        raise InfoError(f"replay: request body is not JSON ({exc})") from None
    if not isinstance(request, dict) or not isinstance(request.get("type"), str):
        raise InfoError('replay: request body must be a JSON object with a string "type"')
    return request


def _field(obj: dict[str, Any], name: str, kind: type, optional: bool = False) -> Any:
    value = obj.get(name)
    if value is None and optional:
        return None
    if type(value) is not kind:
        raise InfoError(
            f"replay: field {name!r} must be a{'n' if kind is int else ''} {kind.__name__}, "
            f"got {value!r}"
        )
    return value


def _array(rows_json: list[str]) -> bytes:
    return ("[" + ",".join(rows_json) + "]").encode()
