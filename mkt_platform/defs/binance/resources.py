"""Binance spot REST client: ``GET /api/v3/klines`` with pagination, and the snapshots of the
present ``GET /api/v3/depth`` (order books), ``GET /api/v3/ticker/24hr`` (24-hour statistics)
and ``GET /api/v3/trades`` (recent trades), with retries and a contract each.

Endpoint docs:
https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-endpoints#klinecandlestick-data
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any, ClassVar

import dagster as dg
import httpx
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import PrivateAttr

from mkt_platform import settings
from mkt_platform.defs.binance.contract import (
    BOOK_LEVEL_CONTRACT,
    KLINE_CONTRACT,
    RECENT_TRADE_CONTRACT,
    RECENT_TRADES_LAKE_SCHEMA,
    TICKER_24H_CONTRACT,
    TICKER_24H_LAKE_SCHEMA,
    order_book_table,
)
from mkt_platform.lib import quarantine
from mkt_platform.lib.contracts import ContractViolation, MalformedResponse, check_page_size
from mkt_platform.lib.http import (
    ExchangeAPIError,
    ExchangeClient,
    ExchangeTransportError,
    PullProgress,
    decode_json_body,
    time_pages,
)

KLINES_PATH = "/api/v3/klines"
DEPTH_PATH = "/api/v3/depth"
TICKER_24H_PATH = "/api/v3/ticker/24hr"
TRADES_PATH = "/api/v3/trades"
#: Binance serves at most 1000 klines a request.
MAX_KLINES_PER_REQUEST = 1000


class BinanceAPIError(ExchangeAPIError):
    """Binance refused a request (a 4xx other than 429/418): not retried. ``code`` is
    Binance's error code (e.g. -1121); ``msg`` is its message."""

    venue = "Binance"

    @property
    def msg(self) -> str:
        return self.message


class BinanceTransportError(ExchangeTransportError):
    """The connection to Binance failed (timeout, refused, body cut off) on every attempt."""


def _describe_request(symbol: str, interval: str, start_ms: int, end_ms: int) -> str:
    def iso(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")

    return f"GET {KLINES_PATH} symbol={symbol} interval={interval} [{iso(start_ms)}, {iso(end_ms)}]"


class BinanceSpotClient(ExchangeClient):
    """Binance spot market-data client (public endpoints; no API key needed).

    Retries, with exponential backoff and jitter, timeouts, connection errors, 5xx answers and
    429/418 (rate limit / IP ban), waiting ``Retry-After`` seconds when Binance sends it; any
    other 4xx fails at once with Binance's error code and message.
    """

    venue: ClassVar[str] = BinanceAPIError.venue

    base_url: str = settings.DEFAULT_BINANCE_BASE_URL

    _last_added_fields: tuple[str, ...] = PrivateAttr(default=())

    @property
    def last_added_fields(self) -> tuple[str, ...]:
        """Positions beyond the 12 contract fields seen by the last :meth:`fetch_klines`
        (``field_12``...: Binance appended a field; it is dropped), empty if none."""
        return self._last_added_fields

    def fetch_klines(self, symbol: str, interval: str, start_ms: int, end_ms: int) -> pa.Table:
        """All klines of ``symbol`` opening in ``[start_ms, end_ms]``, paginated.

        Args:
            symbol: Binance spot symbol, e.g. ``BTCUSDT``.
            interval: Binance interval, e.g. ``1h``.
            start_ms: first open time, UTC milliseconds, inclusive.
            end_ms: last open time, UTC milliseconds, inclusive.

        Returns:
            A table with the kline contract's 12 typed columns (``KLINE_CONTRACT``), ascending by
            open time, with no duplicates. Costs one request per 1000 klines, plus
            one that comes back empty when a page of exactly 1000 does not reach ``end_ms``.

        Raises:
            ContractViolation: a response is not valid JSON, not a list of klines of at least
                12 fields, has a field of the wrong type, or open times that are not ascending
                within the range. The offending body is quarantined first
                (:mod:`mkt_platform.lib.quarantine`; the path is ``exc.quarantine_path``).
                More than 12 fields is not an error: see :attr:`last_added_fields`.
            BinanceAPIError: Binance refused the request (e.g. code -1121, invalid symbol).
            RetryableResponse: still answered 5xx/429/418 after ``max_attempts``.
            BinanceTransportError: the connection still failed after ``max_attempts``.
        """
        added: set[str] = set()
        with self._http() as http:
            pages = time_pages(
                start_ms,
                end_ms,
                lambda cursor: self._get_page(http, symbol, interval, cursor, end_ms, added),
                page_size=MAX_KLINES_PER_REQUEST,
                time_column="open_time",
                next_start=lambda page: page["open_time"][-1].value + 1,
                progress=PullProgress(f"{symbol} {interval} klines"),
            )
        self._last_added_fields = tuple(sorted(added))
        if added:
            dg.get_dagster_logger().warning(
                f"{KLINE_CONTRACT.dataset}: Binance sent fields beyond the contract's 12 "
                f"(dropped): {sorted(added)}"
            )
        if not pages:
            return KLINE_CONTRACT.arrow_schema().empty_table()
        return pa.concat_tables(pages)

    def _http(self) -> httpx.Client:
        return self._client(self.base_url)

    def _get_page(
        self,
        http: httpx.Client,
        symbol: str,
        interval: str,
        start_ms: int,
        end_ms: int,
        added: set[str],
    ) -> pa.Table:
        source = _describe_request(symbol, interval, start_ms, end_ms)
        params = {
            "symbol": symbol,
            "interval": interval,
            "startTime": start_ms,
            "endTime": end_ms,
            "limit": MAX_KLINES_PER_REQUEST,
        }
        response, payload = self._fetch(
            lambda: self._get(http, KLINES_PATH, params, source),
            lambda response: decode_json_body(
                response, source, KLINE_CONTRACT.dataset, "a JSON array"
            ),
            BinanceTransportError,
            source,
        )
        with quarantine.on_violation(response.content):
            table = KLINE_CONTRACT.to_table(payload, source)
            check_page_size(
                KLINE_CONTRACT.dataset, source, table.num_rows, MAX_KLINES_PER_REQUEST, "klines"
            )
            _check_open_times(table, start_ms, end_ms, source)
        added.update(KLINE_CONTRACT.added_fields(payload))
        return table

    def fetch_order_book(self, symbol: str, limit: int, snapshot_ms: int) -> pa.Table:
        """The order book of ``symbol`` now, ``limit`` levels a side
        (``GET /api/v3/depth?symbol=...&limit=...``), stamped ``snapshot_ms``.

        Returns:
            A table with :data:`~mkt_platform.defs.binance.contract.ORDER_BOOK_LAKE_SCHEMA`:
            one row per side and level, prices in quote currency and quantities in base
            currency as DECIMAL(38,8).

        Raises:
            BinanceAPIError: Binance refused the request (an unknown symbol: code -1121).
            BinanceTransportError: every attempt failed to connect or was cut off.
            mkt_platform.lib.contracts.ContractViolation: the answer broke its contract
                (:func:`~mkt_platform.defs.binance.contract.order_book_table`); the body is
                quarantined first.
        """
        source = f"GET {DEPTH_PATH} symbol={symbol} limit={limit}"
        params = {"symbol": symbol, "limit": limit}
        with self._http() as http:
            response, payload = self._fetch(
                lambda: self._get(http, DEPTH_PATH, params, source),
                lambda response: decode_json_body(
                    response, source, BOOK_LEVEL_CONTRACT.dataset, "a JSON object"
                ),
                BinanceTransportError,
                source,
            )
        with quarantine.on_violation(response.content):
            table = order_book_table(payload, symbol, snapshot_ms, source)
            for side in ("bid", "ask"):
                levels = table.filter(pc.equal(table["side"], side)).num_rows
                check_page_size(BOOK_LEVEL_CONTRACT.dataset, source, levels, limit, f"{side}s")
        return table

    def fetch_ticker_24h(self, symbol: str, snapshot_ms: int) -> pa.Table:
        """The rolling 24-hour statistics of ``symbol`` now
        (``GET /api/v3/ticker/24hr?symbol=...``), stamped ``snapshot_ms``.

        Returns:
            One row with :data:`~mkt_platform.defs.binance.contract.TICKER_24H_LAKE_SCHEMA`:
            prices in quote currency, ``volume`` in base and ``quote_volume`` in quote
            currency as DECIMAL(38,8), the window's open and close times, trade ids and count.

        Raises:
            BinanceAPIError: Binance refused the request (an unknown symbol: code -1121).
            BinanceTransportError: every attempt failed to connect or was cut off.
            mkt_platform.lib.contracts.ContractViolation: the answer broke its contract (a
                field missing or mistyped, another symbol's statistics); the body is
                quarantined first.
        """
        source = f"GET {TICKER_24H_PATH} symbol={symbol}"
        dataset = TICKER_24H_CONTRACT.dataset
        payload, content = self._snapshot_get(TICKER_24H_PATH, {"symbol": symbol}, source, dataset)
        with quarantine.on_violation(content):
            if not isinstance(payload, dict):
                raise ContractViolation(
                    dataset, source, None, "a JSON object", type(payload).__name__
                )
            table = TICKER_24H_CONTRACT.to_table([payload], source).table
            if table["symbol"][0].as_py() != symbol:
                raise MalformedResponse(
                    dataset, source, "symbol", symbol, repr(table["symbol"][0].as_py())
                )
        stamp = pa.array([snapshot_ms], TICKER_24H_LAKE_SCHEMA.field("snapshot_time").type)
        return table.add_column(0, "snapshot_time", stamp).cast(TICKER_24H_LAKE_SCHEMA)

    def fetch_recent_trades(self, symbol: str, limit: int, snapshot_ms: int) -> pa.Table:
        """The ``limit`` most recent trades of ``symbol`` (``GET /api/v3/trades?symbol=...
        &limit=...``, oldest first), stamped ``snapshot_ms``.

        Returns:
            A table with :data:`~mkt_platform.defs.binance.contract.RECENT_TRADES_LAKE_SCHEMA`:
            one row per trade, price in quote currency, quantity in base currency
            (DECIMAL(38,8)), the quote quantity as sent (DECIMAL(38,16)).

        Raises:
            BinanceAPIError: Binance refused the request (an unknown symbol: code -1121).
            BinanceTransportError: every attempt failed to connect or was cut off.
            mkt_platform.lib.contracts.ContractViolation: the answer broke its contract, or
                held more trades than ``limit``; the body is quarantined first.
        """
        source = f"GET {TRADES_PATH} symbol={symbol} limit={limit}"
        dataset = RECENT_TRADE_CONTRACT.dataset
        params = {"symbol": symbol, "limit": limit}
        payload, content = self._snapshot_get(TRADES_PATH, params, source, dataset)
        with quarantine.on_violation(content):
            table = RECENT_TRADE_CONTRACT.to_table(payload, source).table
            check_page_size(dataset, source, table.num_rows, limit, "trades")
        n = table.num_rows
        table = table.add_column(0, "symbol", pa.array([symbol] * n, pa.string()))
        stamp = pa.array([snapshot_ms] * n, RECENT_TRADES_LAKE_SCHEMA.field("snapshot_time").type)
        return table.add_column(0, "snapshot_time", stamp).cast(RECENT_TRADES_LAKE_SCHEMA)

    def _snapshot_get(
        self, path: str, params: dict[str, Any], source: str, dataset: str
    ) -> tuple[Any, bytes]:
        """One GET of a snapshot endpoint, retried as every Binance request: the decoded
        JSON body and the raw bytes (for the quarantine)."""
        with self._http() as http:
            response, payload = self._fetch(
                lambda: self._get(http, path, params, source),
                lambda response: decode_json_body(response, source, dataset, "JSON"),
                BinanceTransportError,
                source,
            )
        return payload, response.content

    def _get(
        self, http: httpx.Client, path: str, params: dict[str, Any], source: str
    ) -> httpx.Response:
        response = self._request(http, "GET", path, source, params=params)
        status = response.status_code

        def refused(reason: str | None) -> BinanceAPIError:
            code, msg = (None, reason) if reason else _binance_error(response)
            return BinanceAPIError(status, code, msg, source)

        # 429: rate limit; 418: the IP is banned for a while after ignoring 429s.
        return self._checked(
            response, source, retryable=status in (418, 429) or status >= 500, refused=refused
        )


def _binance_error(response: httpx.Response) -> tuple[int | None, str]:
    """Binance's ``{"code": -1121, "msg": "Invalid symbol."}`` error body, if it is one."""
    try:
        body = response.json()
    except ValueError:
        return None, response.text[:200]
    if isinstance(body, dict) and "msg" in body:
        return body.get("code"), str(body["msg"])
    return None, response.text[:200]


def _check_open_times(table: pa.Table, start_ms: int, end_ms: int, source: str) -> None:
    """Open times must be strictly ascending and inside the requested range."""
    opens = table["open_time"].cast(pa.int64()).to_pylist()
    for index, (before, after) in enumerate(itertools.pairwise(opens)):
        if after <= before:
            raise MalformedResponse(
                KLINE_CONTRACT.dataset,
                source,
                "open_time",
                "strictly ascending open times",
                f"{after} after {before} at record {index + 1}",
            )
    if opens and (opens[0] < start_ms or opens[-1] > end_ms):
        raise MalformedResponse(
            KLINE_CONTRACT.dataset,
            source,
            "open_time",
            f"open times within [{start_ms}, {end_ms}]",
            f"[{opens[0]}, {opens[-1]}]",
        )
