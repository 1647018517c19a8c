"""Replay of Binance spot ``GET /api/v3/klines`` and ``GET /api/v3/depth`` from recorded raw
responses, and SYNTHETIC ``GET /api/v3/ticker/24hr`` and ``GET /api/v3/trades``.

Emulated endpoint (live: ``https://api.binance.com/api/v3/klines``, see
https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-endpoints):

* ``symbol`` and ``interval`` are mandatory; ``startTime``, ``endTime`` (ms, inclusive, on
  the kline's *open* time) and ``limit`` (default 500, 1..1000) are optional.
* With ``startTime`` the answer is the first ``limit`` klines from ``startTime`` on; with
  only ``endTime`` it is the latest ``limit`` klines up to ``endTime``; with neither, the
  latest ``limit`` klines. Always ascending by open time.
* Errors are HTTP 400 with Binance's ``{"code": ..., "msg": ...}`` body and codes.

Recordings are ``DATA_DIR/klines_{SYMBOL}_{INTERVAL}_*.json`` files, each a JSON array of
Binance's 12-element kline arrays exactly as the API returned them. All files of one
symbol/interval are merged. The rows are served as recorded: prices stay strings, times and
trade counts stay ints. A time range that is not recorded yields ``[]``, and an interval
that was never recorded for a known symbol yields HTTP 404 with code -1, so a gap in the
recordings is never mistaken for real (empty) market data.

Where no raw recording of a symbol/interval exists, freqtrade download files
``DATA_DIR/freqtrade_{BASE}_{QUOTE}-{INTERVAL}_*.json`` are served instead (the 1m series).
They hold ``[openTime, open, high, low, close, volume]`` as JSON numbers only: the replay
writes the prices and volume in Binance's 8-decimal string format (exact: every recorded value
has at most 5 decimals) and sends ``null`` for the six fields freqtrade did not keep (close
time, quote volume, trades, taker volumes, ignore). It never derives or invents them.

``GET /api/v3/depth`` (``symbol``; ``limit``, default 100, 1..5000) answers the order book
recorded for the symbol by cryptofeed's HTTP recorder (``DATA_DIR/cryptofeed_capture_api-v3-
depth_*.txt``, lines ``URL -> unix_ts: <body>``, each body a ``limit=1000`` snapshot), cut to
the first ``limit`` levels a side, as Binance cuts a deeper book. Prices and quantities stay
the recorded strings. A symbol with no recorded book is HTTP 404 with code -1 (never an
invented book).

``GET /api/v3/ticker/24hr`` (``symbol``) and ``GET /api/v3/trades`` (``symbol``; ``limit``,
default 500, 1..1000) are **SYNTHETIC**: no real answer of either is recorded. For a symbol
whose book is recorded, the replay answers with a synthetic market around that book
(:mod:`mkt_platform.replay.synthetic_binance`: trades at its best bid and ask, the ticker
computed from them), in Binance's exact format, with the header ``X-Replay-Synthetic`` and a
WARNING saying SYNTHETIC once per symbol and endpoint. Any other symbol is HTTP 404.
"""

from __future__ import annotations

import bisect
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from mkt_platform.replay.server import Response

logger = logging.getLogger(__name__)

KLINES_PATH = "/api/v3/klines"
DEPTH_PATH = "/api/v3/depth"
TICKER_24H_PATH = "/api/v3/ticker/24hr"
TRADES_PATH = "/api/v3/trades"
#: ``GET /api/v3/trades``' default and largest ``limit``.
TRADES_DEFAULT_LIMIT, TRADES_MAX_LIMIT = 500, 1000
#: The header on every SYNTHETIC answer.
SYNTHETIC_HEADER = "X-Replay-Synthetic"
#: ``GET /api/v3/depth``'s default and largest ``limit``.
DEPTH_DEFAULT_LIMIT, DEPTH_MAX_LIMIT = 100, 5000
# Every interval Binance accepts; anything else is -1120 even if a file claims it.
INTERVALS = frozenset(
    {"1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h"}  # intraday
    | {"1d", "3d", "1w", "1M"}
)
DEFAULT_LIMIT = 500
MAX_LIMIT = 1000

_FILE_RE = re.compile(r"^klines_(?P<symbol>[A-Z0-9]+)_(?P<interval>[0-9]+[smhdwM])_.+\.json$")
_FREQTRADE_RE = re.compile(
    r"^freqtrade_(?P<base>[A-Z0-9]+)_(?P<quote>[A-Z0-9]+)-(?P<interval>[0-9]+[smhdwM])_.+\.json$"
)
# Binance's own validation patterns, quoted in its -1100 messages.
_SYMBOL_RE = re.compile(r"^[A-Z0-9-_.]{1,20}$")
_INT_RE = re.compile(r"^[0-9]{1,20}$")
# Positions of the int fields in a raw kline: open time, close time, number of trades.
_INT_FIELDS = frozenset({0, 6, 8})


class BinanceError(Exception):
    """A request Binance would reject; becomes its JSON error body."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status

    def response(self) -> Response:
        return Response.json({"code": self.code, "msg": self.msg}, self.status)


@dataclass(frozen=True)
class _Series:
    """One symbol/interval: open times and the matching pre-serialised rows, ascending."""

    open_times: list[int]
    rows_json: list[str]

    def body(self, start: int, stop: int) -> bytes:
        return ("[" + ",".join(self.rows_json[start:stop]) + "]").encode()


class BinanceHandler:
    """Answers Binance spot REST requests from the recordings in ``data_dir``.

    Files are indexed on the first request and each symbol/interval is loaded on first use,
    then cached for the life of the handler.
    """

    def __init__(self, data_dir: Path | str, clock: Callable[[], int] | None = None) -> None:
        self.data_dir = Path(data_dir)
        #: The present of the SYNTHETIC tickers and trades (UTC ms): the wall clock, or a
        #: fixed moment a test sets.
        self.clock = clock or (lambda: int(time.time() * 1000))
        self._lock = threading.Lock()
        self._files: dict[str, dict[str, list[Path]]] | None = None
        self._series: dict[tuple[str, str], _Series] = {}
        self._freqtrade: set[Path] = set()
        self._books: dict[str, dict] | None = None
        self._warned_synthetic: set[tuple[str, str]] = set()

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> Response:
        route = path.rstrip("/")
        routes = {
            KLINES_PATH: self._klines,
            DEPTH_PATH: self._depth,
            TICKER_24H_PATH: self._ticker_24h,
            TRADES_PATH: self._trades,
        }
        if route not in routes:
            return Response.json(
                {"code": -1, "msg": f"replay: binance has no route {method} {path}"}, 404
            )
        if method != "GET":
            return Response.json(
                {"code": -1, "msg": f"replay: binance {route} only answers GET"},
                405,
                {"Allow": "GET"},
            )
        try:
            return routes[route](query)
        except BinanceError as err:
            return err.response()

    def _book(self, symbol: str) -> dict:
        with self._lock:
            if self._books is None:
                self._books = _load_books(self.data_dir)
        book = self._books.get(symbol)
        if book is None:
            raise BinanceError(-1, f"replay: no order book recorded for {symbol}", 404)
        return book

    def _synthetic(self, route: str, symbol: str, payload: object) -> Response:
        with self._lock:
            first = (route, symbol) not in self._warned_synthetic
            self._warned_synthetic.add((route, symbol))
        if first:
            logger.warning(
                f"replay: serving SYNTHETIC {route} for {symbol} (no real answer is recorded; "
                "a synthetic market around the recorded order book)"
            )
        note = f"SYNTHETIC: {route} is not recorded; generated around the recorded book"
        return Response.json(payload, headers={SYNTHETIC_HEADER: note})

    def _ticker_24h(self, query: dict[str, list[str]]) -> Response:
        from mkt_platform.replay.synthetic_binance import ticker_24h

        symbol = _symbol(query)
        book = self._book(symbol)
        return self._synthetic(TICKER_24H_PATH, symbol, ticker_24h(symbol, book, self.clock()))

    def _trades(self, query: dict[str, list[str]]) -> Response:
        from mkt_platform.replay.synthetic_binance import recent_trades

        symbol = _symbol(query)
        limit = _limit(query, TRADES_DEFAULT_LIMIT, TRADES_MAX_LIMIT)
        book = self._book(symbol)
        trades = recent_trades(symbol, book, self.clock(), limit)
        return self._synthetic(TRADES_PATH, symbol, trades)

    def _depth(self, query: dict[str, list[str]]) -> Response:
        symbol = _symbol(query)
        limit = _limit(query, DEPTH_DEFAULT_LIMIT, DEPTH_MAX_LIMIT)
        book = self._book(symbol)
        return Response.json(
            {
                "lastUpdateId": book["lastUpdateId"],
                "bids": book["bids"][:limit],
                "asks": book["asks"][:limit],
            }
        )

    def _klines(self, query: dict[str, list[str]]) -> Response:
        symbol = _symbol(query)
        interval = _mandatory(query, "interval")
        start_time = _optional_int(query, "startTime")
        end_time = _optional_int(query, "endTime")
        limit = _optional_int(query, "limit")

        if interval not in INTERVALS:
            raise BinanceError(-1120, "Invalid interval.")
        if limit is None:
            limit = DEFAULT_LIMIT
        elif not 1 <= limit <= MAX_LIMIT:
            raise BinanceError(-1130, "Invalid data sent for a parameter.")
        if start_time is not None and end_time is not None and start_time > end_time:
            raise BinanceError(-1023, "Start time is greater than end time.")

        series = self._get_series(symbol, interval)
        opens = series.open_times
        lo = 0 if start_time is None else bisect.bisect_left(opens, start_time)
        hi = len(opens) if end_time is None else bisect.bisect_right(opens, end_time)
        if start_time is not None:
            first, last = lo, min(hi, lo + limit)
        else:
            first, last = max(lo, hi - limit), hi
        return Response.raw_json(series.body(first, max(first, last)))

    # -- recordings ----------------------------------------------------------------------

    def _get_series(self, symbol: str, interval: str) -> _Series:
        with self._lock:
            files = self._index()
            if symbol not in files:
                raise BinanceError(-1121, "Invalid symbol.")
            paths = files[symbol].get(interval)
            if not paths:
                raise BinanceError(
                    -1, f"replay: no recording of {symbol} {interval} in {self.data_dir}", 404
                )
            key = (symbol, interval)
            if key not in self._series:
                self._series[key] = _load_series(paths, self._freqtrade)
            return self._series[key]

    def _index(self) -> dict[str, dict[str, list[Path]]]:
        if self._files is None:
            files: dict[str, dict[str, list[Path]]] = {}
            if not self.data_dir.is_dir():
                logger.warning("replay: no Binance recordings, %s does not exist", self.data_dir)
            else:
                for path in sorted(self.data_dir.glob("klines_*.json")):
                    match = _FILE_RE.match(path.name)
                    if match is None or match["interval"] not in INTERVALS:
                        logger.debug("replay: ignoring %s (not klines_SYMBOL_INTERVAL_*)", path)
                        continue
                    files.setdefault(match["symbol"], {}).setdefault(match["interval"], []).append(
                        path
                    )
                raw = {(symbol, i) for symbol, by in files.items() for i in by}
                for path in sorted(self.data_dir.glob("freqtrade_*.json")):
                    match = _FREQTRADE_RE.match(path.name)
                    if match is None or match["interval"] not in INTERVALS:
                        continue
                    symbol = match["base"] + match["quote"]
                    if (symbol, match["interval"]) in raw:  # raw recordings take precedence
                        continue
                    self._freqtrade.add(path)
                    files.setdefault(symbol, {}).setdefault(match["interval"], []).append(path)
            self._files = files
        return self._files


def _load_series(paths: list[Path], freqtrade: set[Path]) -> _Series:
    by_open: dict[int, list[object]] = {}
    for path in paths:
        rows = json.loads(path.read_bytes())
        if not isinstance(rows, list):
            raise ValueError(f"{path}: expected a JSON array of klines")
        if path in freqtrade:
            rows = [_from_freqtrade(path, i, row) for i, row in enumerate(rows)]
        for i, row in enumerate(rows):
            _check_row(path, i, row)
            previous = by_open.setdefault(row[0], row)
            if previous != row:
                raise ValueError(
                    f"{path}: kline at open time {row[0]} differs from another recording"
                )
    opens = sorted(by_open)
    logger.debug("replay: loaded %d klines from %s", len(opens), [p.name for p in paths])
    return _Series(
        open_times=opens,
        rows_json=[json.dumps(by_open[t], separators=(",", ":")) for t in opens],
    )


def _from_freqtrade(path: Path, index: int, row: object) -> list[object]:
    """A freqtrade ``[t, o, h, l, c, v]`` row as a 12-field Binance kline, unknowns null."""
    if not (isinstance(row, list) and len(row) == 6 and type(row[0]) is int):
        raise ValueError(f"{path}: row {index} is not a freqtrade candle: {row!r}")
    values = []
    for value in row[1:]:
        if type(value) not in (int, float):
            raise ValueError(f"{path}: row {index} has a non-numeric value: {row!r}")
        exact = Decimal(repr(value))
        if exact.as_tuple().exponent < -8:  # would need rounding: refuse, never alter
            raise ValueError(f"{path}: row {index} value {value!r} has more than 8 decimals")
        values.append(f"{exact:.8f}")
    return [row[0], *values, None, None, None, None, None, None]


def _check_row(path: Path, index: int, row: object) -> None:
    # Only ints and strings survive json.loads/json.dumps unchanged; a float would be
    # re-serialised differently from what Binance sent, so such files are rejected.
    ok = isinstance(row, list) and len(row) == 12
    if ok:
        for pos, value in enumerate(row):
            if pos > 5 and value is None:  # a field the recording lacks (freqtrade)
                continue
            want_int = pos in _INT_FIELDS
            is_int = isinstance(value, int) and not isinstance(value, bool)
            if (want_int and not is_int) or (not want_int and not isinstance(value, str)):
                ok = False
                break
    if not ok:
        raise ValueError(f"{path}: row {index} is not a raw Binance REST kline: {row!r}")


def _load_books(data_dir: Path) -> dict[str, dict]:
    """The recorded order books by symbol, from cryptofeed's HTTP recorder files (the latest
    line of a symbol wins)."""
    books: dict[str, dict] = {}
    for path in sorted(data_dir.glob("cryptofeed_capture_api-v3-depth_*.txt")):
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            url, _, rest = line.partition(" -> ")
            _, _, body = rest.partition(": ")
            symbol = re.search(r"[?&]symbol=([A-Z0-9]+)", url)
            if symbol is None or not body:
                raise ValueError(f"{path}: a line is not 'URL?symbol=... -> ts: body'")
            books[symbol.group(1)] = json.loads(body)
    return books


def _limit(query: dict[str, list[str]], default: int, largest: int) -> int:
    """The ``limit`` parameter, ``default`` when absent; -1100 outside ``1..largest``."""
    limit = _optional_int(query, "limit")
    limit = default if limit is None else limit
    if not 1 <= limit <= largest:
        raise BinanceError(
            -1100,
            f"Illegal characters found in parameter 'limit'; legal range is '1-{largest}'.",
        )
    return limit


def _single(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise BinanceError(-1101, "Duplicate values for a parameter detected.")
    return values[0]


def _symbol(query: dict[str, list[str]]) -> str:
    """The mandatory ``symbol``, checked against Binance's own pattern."""
    symbol = _mandatory(query, "symbol")
    if not _SYMBOL_RE.match(symbol):
        raise BinanceError(
            -1100,
            "Illegal characters found in parameter 'symbol'; "
            f"legal range is '{_SYMBOL_RE.pattern}'.",
        )
    return symbol


def _mandatory(query: dict[str, list[str]], name: str) -> str:
    value = _single(query, name)
    if not value:
        raise BinanceError(
            -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        )
    return value


def _optional_int(query: dict[str, list[str]], name: str) -> int | None:
    value = _single(query, name)
    if value is None:
        return None
    if not _INT_RE.match(value):
        raise BinanceError(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '{_INT_RE.pattern}'.",
        )
    return int(value)
