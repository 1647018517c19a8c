"""Deribit REST client: option trades by currency and time, page by page, with retries.

Endpoint (public, no API key):
``GET /api/v2/public/get_last_trades_by_currency_and_time``
(https://docs.deribit.com/api-reference/market-data/public-get_last_trades_by_currency_and_time).
The live API (``https://www.deribit.com``) only answers the last 24 hours; older days come
from ``https://history.deribit.com`` (same path and answer). The caller chooses with
``history=``; asking the live API for an older range answers no trades, without an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import dagster as dg
import httpx
import pyarrow as pa
import pyarrow.compute as pc

from mkt_platform.defs.deribit.contract import (
    DATASET,
    VOLATILITY_INDEX_CONTRACT,
    RejectedTrade,
    check_trades,
    decode_json,
    trades_to_table,
)
from mkt_platform.lib import quarantine
from mkt_platform.lib.contracts import ContractViolation, MalformedResponse, check_page_size
from mkt_platform.lib.http import (
    ExchangeAPIError,
    ExchangeClient,
    ExchangeTransportError,
    PullProgress,
    RetryableResponse,
)
from mkt_platform.settings import DEFAULT_DERIBIT_BASE_URL, DEFAULT_DERIBIT_HISTORY_BASE_URL

TRADES_PATH = "/api/v2/public/get_last_trades_by_currency_and_time"
VOL_INDEX_PATH = "/api/v2/public/get_volatility_index_data"

#: Deribit serves at most 1000 trades a request.
MAX_TRADES_PER_REQUEST = 1000
#: Deribit's JSON-RPC error code for "too_many_requests"; retried like HTTP 429.
TOO_MANY_REQUESTS_CODE = 10028


class DeribitAPIError(ExchangeAPIError):
    """Deribit refused a request (a 4xx other than 429, or a JSON-RPC error): not retried.
    ``code`` is Deribit's JSON-RPC error code (e.g. -32602 invalid params); ``message`` has
    ``data.reason``/``data.param`` when sent."""

    venue = "Deribit"


class DeribitTransportError(ExchangeTransportError):
    """The connection to Deribit failed (timeout, refused, body cut off) on every attempt."""


#: A retryable Deribit answer: a 5xx or 429, or JSON-RPC error 10028 (too many requests).
DeribitRetryableResponse = RetryableResponse


class DeribitPagingError(RuntimeError):
    """Paging by timestamp cannot make progress: the next request would repeat this one.

    This happens when more trades than the page size share one millisecond (or the server
    says ``has_more`` without returning later trades); retrying would loop forever.
    """


@dataclass(frozen=True)
class TradePage:
    """The new trades of one response.

    Attributes:
        table: the trades not seen on an earlier page, in ``OPTION_TRADE_LAKE_SCHEMA``,
            ascending by time, with ``expiry``/``strike``/``option_type`` parsed from the name.
        rejected: new trades left out because their instrument name is not an option name:
            ``(trade_id, instrument_name, reason)``.
        added_fields: names of trade fields the contract does not know (Deribit added them).
        source: the request that returned this page.
        duplicates: trades dropped because an earlier page (or this one) already had them.
    """

    table: pa.Table
    rejected: list[RejectedTrade]
    added_fields: list[str]
    source: str
    duplicates: int


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _describe_request(currency: str, start_ms: int, end_ms: int, history: bool) -> str:
    api = "history" if history else "live"
    return (
        f"GET {TRADES_PATH} ({api} API) currency={currency} kind=option "
        f"[{_iso(start_ms)}, {_iso(end_ms)}]"
    )


class DeribitClient(ExchangeClient):
    """Deribit public market-data client (no API key needed).

    Retries, with exponential backoff and jitter, timeouts, connection errors, 5xx answers,
    429 and JSON-RPC error 10028 (rate limit), waiting ``Retry-After`` seconds when Deribit
    sends it; any other 4xx fails at once with :class:`DeribitAPIError` carrying Deribit's
    error code and message.
    """

    venue: ClassVar[str] = DeribitAPIError.venue

    base_url: str = DEFAULT_DERIBIT_BASE_URL
    history_base_url: str = DEFAULT_DERIBIT_HISTORY_BASE_URL
    #: Trades per request (``count``), 1..1000.
    page_size: int = MAX_TRADES_PER_REQUEST

    def iter_option_trade_pages(
        self, currency: str, start_ms: int, end_ms: int, *, history: bool
    ) -> Iterator[TradePage]:
        """Stream the option trades of ``currency`` in ``[start_ms, end_ms]``, page by page.

        Each request asks for ``page_size`` trades with ``sorting=asc``; the next request
        starts at the last trade's timestamp (not +1 ms: several trades can share a
        millisecond and a page can end between them), and trades already seen are dropped
        by ``trade_id``. Only the set of seen trade ids is kept between pages.

        Args:
            currency: Deribit currency, e.g. ``BTC``.
            start_ms: first trade time, UTC milliseconds, inclusive.
            end_ms: last trade time, UTC milliseconds, inclusive.
            history: ask ``history_base_url`` (days older than the live API's 24 hours)
                instead of ``base_url``.

        Yields:
            One :class:`TradePage` per response that has new trades (or new rejected
            ones), in time order. Nothing for an empty range or ``start_ms > end_ms``.

        Raises:
            ContractViolation: a response is not JSON-RPC with ``result.trades`` and
                ``result.has_more``, a trade breaks the contract (see
                :func:`~mkt_platform.defs.deribit.contract.check_trades`), or trade times are
                not ascending or fall outside the requested range. The body is quarantined
                first (``exc.quarantine_path``).
            DeribitAPIError: Deribit refused the request (e.g. code -32602 for a
                ``start_timestamp`` in the future).
            DeribitRetryableResponse: still 5xx/429 after ``max_attempts``.
            DeribitTransportError: the connection still failed after ``max_attempts``.
            DeribitPagingError: the next request would repeat the last one (more than
                ``page_size`` trades in one millisecond).
            ValueError: ``page_size`` is not in 1..1000.
        """
        if not 1 <= self.page_size <= MAX_TRADES_PER_REQUEST:
            raise ValueError(f"page_size must be in 1..{MAX_TRADES_PER_REQUEST}")
        if start_ms > end_ms:
            return
        seen: set[str] = set()
        warned_fields: set[str] = set()
        cursor = start_ms
        with self._http(self.history_base_url if history else self.base_url) as http:
            while True:
                source = _describe_request(currency, cursor, end_ms, history)
                params = {
                    "currency": currency,
                    "kind": "option",
                    "start_timestamp": cursor,
                    "end_timestamp": end_ms,
                    "count": self.page_size,
                    "sorting": "asc",
                    "include_old": "true",
                }
                trades, has_more, body = self._get_page(http, params, source)
                with quarantine.on_violation(body):
                    check_page_size(DATASET, source, len(trades), self.page_size, "trades")
                    added = check_trades(trades, source)
                    _check_times(trades, cursor, end_ms, source)
                if set(added) - warned_fields:
                    warned_fields.update(added)
                    dg.get_dagster_logger().warning(
                        f"Deribit trades carry fields the contract does not know: {added} "
                        f"({source})"
                    )
                fresh = []
                for trade in trades:
                    if trade["trade_id"] not in seen:
                        seen.add(trade["trade_id"])
                        fresh.append(trade)
                if fresh:
                    table, rejected = trades_to_table(fresh)
                    yield TradePage(table, rejected, added, source, len(trades) - len(fresh))
                if not has_more:
                    return
                last_ms = trades[-1]["timestamp"] if trades else cursor
                if last_ms <= cursor:
                    raise DeribitPagingError(
                        f"{source}: has_more is true but every trade of the page is at "
                        f"{_iso(cursor)}; the next request would repeat this one (more than "
                        f"{self.page_size} trades in one millisecond?)"
                    )
                cursor = last_ms

    def fetch_volatility_index(
        self, currency: str, start_ms: int, end_ms: int, resolution: str = "1D"
    ) -> pa.Table:
        """Deribit's volatility index (DVOL) candles of ``currency`` starting in
        ``[start_ms, end_ms]``: ``GET /api/v2/public/get_volatility_index_data`` on
        ``base_url``, following ``continuation`` (each answer holds the newest candles of the
        range; ``continuation`` is the ``end_timestamp`` of the next, older page).

        Args:
            currency: Deribit currency, e.g. ``BTC``.
            start_ms, end_ms: candle start times, UTC milliseconds, both inclusive.
            resolution: ``1D`` (daily), or seconds as Deribit spells them (``3600``).

        Returns:
            A table of :data:`VOLATILITY_INDEX_CONTRACT` (timestamp UTC; open, high, low,
            close as DECIMAL(38,8), the index in percent), ascending, without duplicates.

        Raises:
            ContractViolation: an answer is not ``{"result": {"data": [...],
                "continuation": int|null}}``, a candle breaks the contract, candles are out of
                order or outside the range, or ``continuation`` does not move back.
            DeribitAPIError: Deribit refused the request (the replay answers so for a
                resolution it holds no recording of).
            DeribitTransportError: the connection still failed after ``max_attempts``.
        """
        pages: list[pa.Table] = []
        contract = VOLATILITY_INDEX_CONTRACT
        cursor = end_ms
        progress = PullProgress(f"{currency} volatility index {resolution}")
        with self._http(self.base_url) as http:
            while cursor >= start_ms:
                params = {
                    "currency": currency,
                    "start_timestamp": start_ms,
                    "end_timestamp": cursor,
                    "resolution": resolution,
                }
                source = (
                    f"GET {VOL_INDEX_PATH} currency={currency} resolution={resolution} "
                    f"[{_iso(start_ms)}, {_iso(cursor)}]"
                )
                response, (data, continuation) = self._fetch(
                    lambda params=params, source=source: self._get(
                        http, params, source, VOL_INDEX_PATH
                    ),
                    lambda response, source=source: _index_result(response, source),
                    DeribitTransportError,
                    source,
                )
                with quarantine.on_violation(response.content):
                    table = contract.to_table(data, source)
                    times = pc.cast(table["timestamp"], pa.int64()).to_pylist()
                    if times != sorted(set(times)) or (
                        times and (times[0] < start_ms or times[-1] > cursor)
                    ):
                        raise ContractViolation(
                            contract.dataset,
                            source,
                            "timestamp",
                            "ascending candle times within the requested range",
                            f"{times[:3]}...{times[-3:]}",
                        )
                    if continuation is not None and continuation >= cursor:
                        raise ContractViolation(
                            contract.dataset,
                            source,
                            "continuation",
                            f"an end_timestamp before {cursor}",
                            str(continuation),
                        )
                if table.num_rows:
                    pages.append(table)
                    progress.page(table.num_rows, times[-1])
                if continuation is None:
                    break
                cursor = continuation
        if not pages:
            return contract.arrow_schema().empty_table()
        return pa.concat_tables(reversed(pages))

    def _http(self, base_url: str) -> httpx.Client:
        return self._client(base_url)

    def _get_page(
        self, http: httpx.Client, params: dict[str, Any], source: str
    ) -> tuple[list[Any], bool, bytes]:
        """``result.trades``, ``result.has_more`` and the raw body of one request; a body
        that is not the JSON-RPC shape is quarantined before re-raising."""

        def decoded(response: httpx.Response) -> tuple[list[Any], bool]:
            try:
                return _result(response, source)
            except MalformedResponse:
                raise  # retried, and quarantined by _fetch if it persists
            except ContractViolation:
                with quarantine.on_violation(response.content):
                    raise

        response, (trades, has_more) = self._fetch(
            lambda: self._get(http, params, source),
            decoded,
            DeribitTransportError,
            source,
        )
        return trades, has_more, response.content

    def _get(
        self, http: httpx.Client, params: dict[str, Any], source: str, path: str = TRADES_PATH
    ) -> httpx.Response:
        response = self._request(http, "GET", path, source, params=params)
        status = response.status_code
        code, message = _deribit_error(response) if status >= 400 else (None, "")

        def refused(reason: str | None) -> DeribitAPIError:
            return DeribitAPIError(status, code, reason or message, source)

        return self._checked(
            response,
            source,
            retryable=status == 429 or status >= 500 or code == TOO_MANY_REQUESTS_CODE,
            refused=refused,
        )


def _deribit_error(response: httpx.Response) -> tuple[int | None, str]:
    """Code and message of a JSON-RPC error body (``{"error": {"code", "message", "data"}}``)."""
    try:
        body = response.json()
    except ValueError:
        return None, response.text[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, response.text[:200]
    code = error.get("code")
    message = str(error.get("message", ""))
    data = error.get("data")
    if isinstance(data, dict) and data:
        message += " (" + ", ".join(f"{k}: {v}" for k, v in data.items()) + ")"
    return (code if type(code) is int else None), message


def _result(response: httpx.Response, source: str) -> tuple[list[Any], bool]:
    """``result.trades`` and ``result.has_more`` of a 2xx JSON-RPC answer, decoded exactly."""
    if not response.content.strip():
        raise MalformedResponse(DATASET, source, None, "a JSON-RPC object", "an empty body")
    try:
        body = decode_json(response.content)
    except ValueError as exc:
        content_type = response.headers.get("Content-Type", "no content type")
        raise MalformedResponse(
            DATASET,
            source,
            None,
            "a JSON-RPC object",
            f"undecodable {content_type} body ({exc}): {response.text[:120]!r}",
        ) from None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code, message = _deribit_error(response)
        raise DeribitAPIError(response.status_code, code, message, source)
    result = body.get("result") if isinstance(body, dict) else None
    if (
        not isinstance(result, dict)
        or not isinstance(result.get("trades"), list)
        or type(result.get("has_more")) is not bool
    ):
        raise ContractViolation(
            DATASET,
            source,
            None,
            'a JSON-RPC object {"result": {"trades": [...], "has_more": bool}}',
            f"{type(body).__name__}: {response.text[:160]!r}",
        )
    return result["trades"], result["has_more"]


def _index_result(response: httpx.Response, source: str) -> tuple[list[Any], int | None]:
    """``result.data`` and ``result.continuation`` of a 2xx JSON-RPC answer, decoded exactly."""
    dataset = VOLATILITY_INDEX_CONTRACT.dataset
    if not response.content.strip():
        raise MalformedResponse(dataset, source, None, "a JSON-RPC object", "an empty body")
    try:
        body = decode_json(response.content)
    except ValueError as exc:
        raise MalformedResponse(
            dataset, source, None, "a JSON-RPC object", f"undecodable body ({exc})"
        ) from None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code, message = _deribit_error(response)
        raise DeribitAPIError(response.status_code, code, message, source)
    result = body.get("result") if isinstance(body, dict) else None
    continuation = result.get("continuation") if isinstance(result, dict) else None
    if (
        not isinstance(result, dict)
        or not isinstance(result.get("data"), list)
        or not (continuation is None or type(continuation) is int)
    ):
        raise ContractViolation(
            dataset,
            source,
            None,
            'a JSON-RPC object {"result": {"data": [...], "continuation": int or null}}',
            f"{type(body).__name__}: {response.text[:160]!r}",
        )
    return result["data"], continuation


def _check_times(trades: list[dict[str, Any]], start_ms: int, end_ms: int, source: str) -> None:
    """Times must be ascending (``sorting=asc``) and inside the requested range."""
    previous = start_ms
    for index, trade in enumerate(trades):
        ts = trade["timestamp"]
        if ts < start_ms:
            raise MalformedResponse(
                DATASET,
                source,
                "timestamp",
                f"timestamps within [{start_ms}, {end_ms}]",
                f"{ts} in trade {index}",
            )
        if ts < previous:
            raise MalformedResponse(
                DATASET,
                source,
                "timestamp",
                "ascending timestamps (sorting=asc)",
                f"{ts} after {previous} in trade {index}",
            )
        if ts > end_ms:
            raise MalformedResponse(
                DATASET,
                source,
                "timestamp",
                f"timestamps within [{start_ms}, {end_ms}]",
                f"{ts} in trade {index}",
            )
        previous = ts
