"""Replay of Polygon's aggregates endpoint from the recordings in ``shared/data/polygon``.

Emulated endpoint (live: ``https://api.polygon.io``, see
https://polygon.io/docs/rest/stocks/aggregates/custom-bars):
``GET /v2/aggs/ticker/{ticker}/range/1/minute/{from}/{to}`` with ``adjusted``, ``sort``
(``asc``) and ``limit`` (default 5,000, at most 50,000). ``from`` and ``to`` are New York
trading dates (``YYYY-MM-DD``, inclusive) or UTC milliseconds. Polygon's answer is rebuilt
around the recorded bars: ``{"ticker", "queryCount", "resultsCount", "adjusted", "results",
"status": "OK", "request_id", "count", "next_url"?}``, ``results`` left out when there is no
bar (as Polygon does), and a ``next_url`` (absolute, on this server, with a ``cursor``) while
bars remain. An answer needs an API key (``Authorization: Bearer ...`` or ``apiKey=``):
without one, 401 with Polygon's ``NOT_AUTHORIZED`` body. A ticker with no recording is 404,
never an invented bar.

Recordings (SOURCES.md section 13), saved by other projects as CSV rows of ``results[]``:

* ``raftroch1_polygon_SPY_1min_2025-08-29.csv`` and ``raftroch1_polygon_O_SPY…_1min_2025-08-29
  .csv`` (ten SPY options): ``timestamp`` is **naive America/New_York**;
* ``leoxu2023_SPY_1min_2024-02-20_to_2024-05-17.csv``: 63 trading days, ``datetime``
  **tz-aware America/New_York** (very likely Polygon, SOURCES.md says why).

Each row becomes ``{"v", "vw", "o", "c", "h", "l", "t", "n"}``: ``t`` the bar's start in UTC
ms, the numbers written as the CSV holds them (a JSON number of the same value), ``n`` an
integer.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from mkt_platform.lib import equity_calendar
from mkt_platform.replay import synthetic_polygon
from mkt_platform.replay.server import RecordedRequest, Response

logger = logging.getLogger(__name__)

NEW_YORK = ZoneInfo("America/New_York")
DEFAULT_LIMIT, MAX_LIMIT = 5000, 50_000
_PATH = re.compile(
    r"^/v2/aggs/ticker/(?P<ticker>[^/]+)/range/(?P<multiplier>\d+)/(?P<timespan>[a-z]+)/"
    r"(?P<start>[^/]+)/(?P<end>[^/]+)$"
)
CONTRACTS_PATH = "/v3/reference/options/contracts"
DEFAULT_CONTRACTS_LIMIT, MAX_CONTRACTS_LIMIT = 10, 1000
#: The recorded options contracts listings: underlying -> (file, the day it was fetched).
CONTRACT_LISTINGS = {
    "SPY": ("raftroch1_polygon_v3_reference_options_contracts_SPY_2025-08-30.json", "2025-08-30"),
}
NEWS_PATH = "/v2/reference/news"
DEFAULT_NEWS_LIMIT, MAX_NEWS_LIMIT = 10, 1000
#: The recorded news: ticker -> file (polygon-io/client-python's mock: one NFLX article).
NEWS_RECORDINGS = {"NFLX": "mock_v2_reference_news_ticker-NFLX.json"}
#: The market-status mocks, by path.
STATUS_MOCKS = {
    "/v1/marketstatus/now": "mock_v1_marketstatus_now_2022-04-28.json",
    "/v1/marketstatus/upcoming": "mock_v1_marketstatus_upcoming_2022-05.json",
}
#: Header on an answer that holds no recorded data (an option's bars that were not recorded).
UNRECORDED_HEADER = "X-Replay-Unrecorded"
_FILE = re.compile(r"^[a-z0-9]+_(?:polygon_)?(?P<ticker>O_SPY[0-9CP]+|SPY)_1min_.+\.csv$")


class PolygonHandler:
    """Answers Polygon aggregate requests from the CSV recordings in ``data_dir``."""

    def __init__(self, data_dir: Path | str) -> None:
        self.data_dir = Path(data_dir)
        self._lock = threading.Lock()
        self._bars: dict[str, list[tuple[int, date, str]]] | None = None
        self._listings: dict[str, list[dict[str, Any]]] = {}
        self._unrecorded: set[str] = set()
        self._warned_synthetic = False
        self._warned_news = False

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> Response:
        return self.handle_request(RecordedRequest(method, path, query, body), {}, "")

    def handle_request(
        self, request: RecordedRequest, headers: dict[str, str], base_url: str
    ) -> Response:
        if request.method != "GET":
            return _error(405, "ERROR", f"replay: polygon {request.path} only answers GET")
        match = _PATH.match(request.path)
        if match is None and request.path not in (CONTRACTS_PATH, NEWS_PATH, *STATUS_MOCKS):
            return _error(404, "NOT_FOUND", f"replay: polygon has no route {request.path}")
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if not (auth.startswith("Bearer ") and auth[7:].strip()) and not _one(request, "apiKey"):
            return _error(
                401,
                "NOT_AUTHORIZED",
                "Unknown API Key",  # Polygon's words for a missing or wrong key
            )
        if request.path in STATUS_MOCKS:
            # Polygon's client-python mocks: the answer of one moment (2022-04-28) and the
            # holidays then upcoming, whenever asked.
            return Response.raw_json((self.data_dir / STATUS_MOCKS[request.path]).read_bytes())
        if request.path == NEWS_PATH:
            return self._news(request, base_url)
        if match is None:
            return self._contracts(request, base_url)
        ticker = match["ticker"]
        if (match["multiplier"], match["timespan"]) != ("1", "minute"):
            return _error(404, "NOT_FOUND", f"replay: only 1-minute bars are recorded for {ticker}")
        try:
            start, end = _bound(match["start"]), _bound(match["end"])
        except ValueError as exc:
            return _error(400, "ERROR", f"Could not parse the request: {exc}")
        extra: dict[str, str] = {}
        bars = self._load().get(ticker)
        if bars is None and ticker == synthetic_polygon.VIX:
            bars = self._synthetic_vix(start, end)
            extra[synthetic_polygon.HEADER] = synthetic_polygon.VIX_NOTE
        unrecorded = bars is None and ticker.startswith("O:")
        if bars is None and not unrecorded:
            return _error(404, "NOT_FOUND", f"replay: no recording of {ticker} aggregates")
        if unrecorded:
            # Only ten SPY options' bars are recorded. Another option is answered with no bar,
            # in Polygon's format for a contract without trades, and said to be unrecorded.
            bars = []
            if not self._unrecorded:
                logger.warning(
                    "replay: no recording of %s minute bars; answering NO BARS for it and for "
                    "every other option without a recording (not market data: the contracts "
                    "may have traded; header %s)",
                    ticker,
                    UNRECORDED_HEADER,
                )
            if ticker not in self._unrecorded:
                self._unrecorded.add(ticker)
                logger.debug("replay: no recording of %s minute bars: no bars", ticker)
        try:
            limit = int(_one(request, "limit") or DEFAULT_LIMIT)
            cursor = int(_one(request, "cursor") or 0)
        except ValueError as exc:
            return _error(400, "ERROR", f"Could not parse the request: {exc}")
        if not 1 <= limit <= MAX_LIMIT:
            return _error(400, "ERROR", f"limit must be 1..{MAX_LIMIT}")
        selected = [row for row in bars if _within(row, start, end)]
        page = selected[cursor : cursor + limit]
        payload: dict[str, Any] = {
            "ticker": ticker,
            "queryCount": len(page),
            "resultsCount": len(page),
            "adjusted": (_one(request, "adjusted") or "true") == "true",
        }
        if page:
            payload["results"] = "__RESULTS__"
        payload |= {"status": "OK", "request_id": uuid.uuid4().hex, "count": len(page)}
        if cursor + limit < len(selected):
            query = {
                "cursor": cursor + limit,
                "adjusted": _one(request, "adjusted") or "true",
                "sort": "asc",
                "limit": limit,
            }
            payload["next_url"] = f"{base_url}{request.path}?{urlencode(query)}"
        text = json.dumps(payload, separators=(",", ":"))
        text = text.replace('"__RESULTS__"', "[" + ",".join(row[2] for row in page) + "]")
        if unrecorded:
            extra[UNRECORDED_HEADER] = f"no recording of {ticker}: no bars"
        return Response.raw_json(text.encode(), headers=extra)

    def _synthetic_vix(self, start: date | int, end: date | int) -> list[tuple[int, date, str]]:
        """SYNTHETIC ``I:VIX`` bars of the trading days the bounds span (say so, once)."""
        if not self._warned_synthetic:
            self._warned_synthetic = True
            logger.warning("replay: serving %s: not market data", synthetic_polygon.VIX_NOTE)
        first = start if isinstance(start, date) else _ny_date(start)
        last = end if isinstance(end, date) else _ny_date(end)
        bars: list[tuple[int, date, str]] = []
        for session in equity_calendar.sessions(first, last):
            bars.extend(synthetic_polygon.vix_bars(session.day))
        return bars

    def _contracts(self, request: RecordedRequest, base_url: str) -> Response:
        """``GET /v3/reference/options/contracts`` from the recorded listing of the
        underlying, filtered as Polygon filters (``contract_type``, ``expiration_date`` and
        ``strike_price`` with ``.gt/.gte/.lt/.lte``), sorted by ticker, paged by ``limit``
        (10 by default, at most 1,000) with a ``next_url``. ``as_of`` may be the day the
        listing was fetched or the trading day before it (the listing lacks only the
        contracts that expired that day, said in a header); another day is 404."""
        underlying = _one(request, "underlying_ticker")
        recorded = CONTRACT_LISTINGS.get(underlying or "")
        if recorded is None:
            return _error(404, "NOT_FOUND", f"replay: no options contracts listing of {underlying}")
        name, fetched = recorded
        as_of = _one(request, "as_of") or fetched
        before = equity_calendar.previous_trading_day(date.fromisoformat(fetched))
        served = {fetched, before.isoformat()}
        if as_of not in served:
            return _error(
                404,
                "NOT_FOUND",
                f"replay: the {underlying} options contracts listing is recorded as of {fetched} "
                f"only (asked as_of={as_of})",
            )
        try:
            limit = int(_one(request, "limit") or DEFAULT_CONTRACTS_LIMIT)
            cursor = int(_one(request, "cursor") or 0)
            selected = [c for c in self._listing(name) if _matches(c, request)]
        except (ValueError, ArithmeticError) as exc:
            return _error(400, "ERROR", f"Could not parse the request: {exc}")
        if not 1 <= limit <= MAX_CONTRACTS_LIMIT:
            return _error(400, "ERROR", f"limit must be 1..{MAX_CONTRACTS_LIMIT}")
        selected.sort(key=lambda c: c["ticker"], reverse=_one(request, "order") == "desc")
        page = selected[cursor : cursor + limit]
        payload: dict[str, Any] = {
            "results": page,
            "status": "OK",
            "request_id": uuid.uuid4().hex,
        }
        if cursor + limit < len(selected):
            query = {k: v[-1] for k, v in request.query.items() if k != "cursor"}
            payload["next_url"] = (
                f"{base_url}{request.path}?{urlencode({**query, 'cursor': cursor + limit})}"
            )
        extra = {}
        if as_of != fetched:
            extra["X-Replay-Note"] = (
                f"listing fetched {fetched}: contracts that expired on {as_of} are absent"
            )
        return Response.json(payload, headers=extra)

    def _news(self, request: RecordedRequest, base_url: str) -> Response:
        """``GET /v2/reference/news``: the recorded articles of a ticker that has a recording
        (NFLX), else SYNTHETIC articles (:func:`synthetic_polygon.news_articles`, said in a
        header), filtered by ``published_utc`` (``.gt/.gte/.lt/.lte``), sorted by
        ``published_utc`` (``order``), paged by ``limit`` (10 by default, at most 1,000)."""
        ticker = _one(request, "ticker")
        if not ticker:
            return _error(400, "ERROR", "replay: news is served per ticker (ticker=...)")
        try:
            bounds = {
                suffix: _instant(_one(request, f"published_utc{suffix}"))
                for suffix in (".gt", ".gte", ".lt", ".lte")
                if _one(request, f"published_utc{suffix}")
            }
            limit = int(_one(request, "limit") or DEFAULT_NEWS_LIMIT)
            cursor = int(_one(request, "cursor") or 0)
        except ValueError as exc:
            return _error(400, "ERROR", f"Could not parse the request: {exc}")
        if not 1 <= limit <= MAX_NEWS_LIMIT:
            return _error(400, "ERROR", f"limit must be 1..{MAX_NEWS_LIMIT}")
        extra: dict[str, str] = {}
        if ticker in NEWS_RECORDINGS:
            articles = json.loads((self.data_dir / NEWS_RECORDINGS[ticker]).read_text())["results"]
        else:
            low = bounds.get(".gte") or bounds.get(".gt")
            high = bounds.get(".lt") or bounds.get(".lte")
            if low is None or high is None or (high - low).days > 366:
                return _error(
                    400,
                    "ERROR",
                    "replay: SYNTHETIC news needs a published_utc window of a year at most",
                )
            if not self._warned_news:
                self._warned_news = True
                logger.warning("replay: serving %s: not news", synthetic_polygon.NEWS_NOTE)
            articles = []
            day = low.astimezone(NEW_YORK).date()
            while day <= high.astimezone(NEW_YORK).date():
                articles.extend(synthetic_polygon.news_articles(ticker, day))
                day += timedelta(days=1)
            extra[synthetic_polygon.HEADER] = synthetic_polygon.NEWS_NOTE
        compare = {
            ".gt": lambda a, b: a > b,
            ".gte": lambda a, b: a >= b,
            ".lt": lambda a, b: a < b,
            ".lte": lambda a, b: a <= b,
        }
        selected = [
            a
            for a in articles
            if all(compare[s](_instant(a["published_utc"]), v) for s, v in bounds.items())
        ]
        selected.sort(key=lambda a: a["published_utc"], reverse=_one(request, "order") == "desc")
        page = selected[cursor : cursor + limit]
        payload: dict[str, Any] = {
            "results": page,
            "status": "OK",
            "request_id": uuid.uuid4().hex,
            "count": len(page),
        }
        if cursor + limit < len(selected):
            query = {k: v[-1] for k, v in request.query.items() if k != "cursor"}
            payload["next_url"] = (
                f"{base_url}{request.path}?{urlencode({**query, 'cursor': cursor + limit})}"
            )
        return Response.json(payload, headers=extra)

    def _listing(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            if name not in self._listings:
                text = (self.data_dir / name).read_text()
                self._listings[name] = json.loads(text)
            return self._listings[name]

    def _load(self) -> dict[str, list[tuple[int, date, str]]]:
        with self._lock:
            if self._bars is None:
                bars: dict[str, dict[int, tuple[int, date, str]]] = {}
                for path in sorted(self.data_dir.glob("*.csv")):
                    found = _FILE.match(path.name)
                    if found is None:
                        continue
                    ticker = found["ticker"].replace("O_", "O:", 1)
                    for row in _rows(path):
                        bars.setdefault(ticker, {})[row[0]] = row
                self._bars = {t: [rows[k] for k in sorted(rows)] for t, rows in bars.items()}
            return self._bars


def _rows(path: Path) -> list[tuple[int, date, str]]:
    """``(t, New York date, the bar's JSON)`` for every row of a recording."""
    rows = []
    with path.open(newline="") as handle:
        for record in csv.DictReader(handle):
            text = record.get("timestamp") or record["datetime"]
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=NEW_YORK)
            t = int(moment.timestamp() * 1000)
            fields = {
                "v": record["volume"],
                "vw": record["vwap"],
                "o": record["open"],
                "c": record["close"],
                "h": record["high"],
                "l": record["low"],
            }
            for value in fields.values():
                float(value)  # a number, or the recording is broken
            body = ",".join(f'"{k}":{v}' for k, v in fields.items())
            bar = f'{{{body},"t":{t},"n":{int(float(record["transactions"]))}}}'
            rows.append((t, moment.astimezone(NEW_YORK).date(), bar))
    return rows


_COMPARISONS = {
    "": lambda a, b: a == b,
    ".gt": lambda a, b: a > b,
    ".gte": lambda a, b: a >= b,
    ".lt": lambda a, b: a < b,
    ".lte": lambda a, b: a <= b,
}


def _matches(contract: dict[str, Any], request: RecordedRequest) -> bool:
    """Whether a listed contract passes the request's filters (Polygon's query syntax)."""
    kind = _one(request, "contract_type")
    if kind and contract["contract_type"] != kind:
        return False
    for suffix, compare in _COMPARISONS.items():
        expiry = _one(request, f"expiration_date{suffix}")
        if expiry and not compare(
            contract["expiration_date"], date.fromisoformat(expiry).isoformat()
        ):
            return False
        strike = _one(request, f"strike_price{suffix}")
        if strike and not compare(Decimal(str(contract["strike_price"])), Decimal(strike)):
            return False
    return True


def _instant(text: str) -> datetime:
    """A ``published_utc`` bound or value: an ISO time (``Z`` or an offset) or a date (its UTC
    midnight)."""
    if len(text) == 10:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ny_date(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, NEW_YORK).date()


def _bound(text: str) -> date | int:
    """A ``from``/``to`` bound: a New York date, or UTC milliseconds."""
    if text.isdigit():
        return int(text)
    return date.fromisoformat(text)


def _within(row: tuple[int, date, str], start: date | int, end: date | int) -> bool:
    t, day, _ = row
    after = t >= start if isinstance(start, int) else day >= start
    before = t <= end if isinstance(end, int) else day <= end
    return after and before


def _one(request: RecordedRequest, name: str) -> str | None:
    values = request.query.get(name)
    return values[-1] if values else None


def _error(status: int, kind: str, message: str) -> Response:
    body: dict[str, Any] = {"status": kind, "request_id": uuid.uuid4().hex}
    body["message" if kind == "NOT_AUTHORIZED" else "error"] = message
    return Response.json(body, status)
