"""What every exchange client shares: bounded requests, the retry policy, ``Retry-After``.

* :class:`ExchangeClient`: the base of each venue's client resource: its settings (timeouts,
  the overall deadline and body cap of a request, retries), an ``httpx.Client`` factory and
  :meth:`ExchangeClient._request`, which bounds every request.
* A request is bounded in time and size whatever the server does: ``deadline_seconds`` caps
  connect, headers and body together (a body trickling at one byte a second no longer holds a
  pull for an hour: httpx's own timeout is per read), and ``max_response_bytes`` caps the body
  (a server that ignores ``limit`` cannot grow memory without end).
* Each client raises its own "retryable" exception for an answer worth retrying (5xx, 429, a
  venue's rate-limit code) with a ``retry_after`` attribute; timeouts, deadlines and connection
  errors are retried too. The wait is ``Retry-After`` when the exchange sent it (a longer one
  than ``retry_after_max_seconds`` fails at once), else exponential backoff with jitter. Every
  retry is logged as a warning on the Dagster logger with its wait.
"""

from __future__ import annotations

import functools
import json
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

import dagster as dg
import httpx
import tenacity
from pydantic import PrivateAttr

from mkt_platform.lib import quarantine
from mkt_platform.lib.contracts import MalformedResponse

T = TypeVar("T")


class DeadlineExceeded(httpx.TimeoutException):
    """A request (connect, headers and body) took longer than its overall deadline.

    A timeout, so it is retried like one."""


class ResponseTooLarge(RuntimeError):
    """A response body exceeded the client's ``max_response_bytes``: not retried (a server
    that ignores the page size would send the same again).

    Attributes:
        limit: the cap in bytes.
        source: the request.
    """

    def __init__(self, source: str, limit: int, declared: int | None) -> None:
        self.source, self.limit = source, limit
        seen = f"declared {declared} bytes" if declared is not None else f"over {limit} bytes"
        super().__init__(
            f"{source}: response body too large ({seen}; the cap is {limit} bytes, "
            "max_response_bytes): the server ignored the page size, or this is not the API"
        )


def bounded_request(
    http: httpx.Client,
    method: str,
    url: str,
    *,
    deadline_seconds: float,
    max_bytes: int,
    source: str,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request and read its whole body within ``deadline_seconds`` and
    ``max_bytes``.

    The body is streamed chunk by chunk: the deadline is checked as each chunk arrives (a
    silent server is cut by the client's read timeout), and reading stops as soon as the body
    passes ``max_bytes`` (or at once, when ``Content-Length`` says so).

    Returns:
        The response, its body read (``.content`` works, decoded).

    Raises:
        DeadlineExceeded: the deadline passed before the body was complete.
        ResponseTooLarge: the body is larger than ``max_bytes``.
        httpx.TransportError: as httpx raises it (connect, read timeout, cut-off body).
    """
    started = time.monotonic()
    request = http.build_request(method, url, **kwargs)
    response = http.send(request, stream=True)
    try:
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            raise ResponseTooLarge(source, max_bytes, int(declared))
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise ResponseTooLarge(source, max_bytes, None)
            if time.monotonic() - started > deadline_seconds:
                raise DeadlineExceeded(
                    f"{source}: no complete answer within {deadline_seconds:.0f}s "
                    f"(deadline_seconds; {size} bytes received)",
                    request=request,
                )
            chunks.append(chunk)
    finally:
        response.close()
    headers = [
        (k, v)
        for k, v in response.headers.multi_items()
        if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
    ]
    return httpx.Response(
        response.status_code, headers=headers, content=b"".join(chunks), request=request
    )


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds (``None`` when absent or not a number)."""
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def retrying(
    retryable: type[Exception] | tuple[type[Exception], ...],
    *,
    max_attempts: int,
    backoff_initial_seconds: float,
    backoff_max_seconds: float,
    sleep: Callable[[float], None],
) -> tenacity.Retrying:
    """A tenacity ``Retrying`` that retries ``retryable``, timeouts and transport errors.

    Args:
        retryable: the client's exception for a retryable answer; its ``retry_after``
            (seconds or ``None``) overrides the backoff.
        max_attempts: attempts in all, the first included.
        backoff_initial_seconds: multiplier of the exponential backoff.
        backoff_max_seconds: cap of one backoff wait.
        sleep: how to wait (tests pass a recorder).

    The last exception is re-raised once the attempts are used up.
    """
    backoff = tenacity.wait_exponential_jitter(
        multiplier=backoff_initial_seconds, max=backoff_max_seconds
    )

    def wait(state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if isinstance(error, retryable) and retry_after is not None:
            return retry_after
        return backoff(state)

    def log_retry(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        seconds = state.next_action.sleep if state.next_action else 0
        why = "Retry-After" if getattr(error, "retry_after", None) is not None else "backoff"
        dg.get_dagster_logger().warning(
            f"attempt {state.attempt_number}/{max_attempts} failed ({error}); "
            f"waiting {seconds:.1f}s ({why}) before the next"
        )

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(
            (retryable, httpx.TimeoutException, httpx.TransportError)
        ),
        stop=tenacity.stop_after_attempt(max_attempts),
        wait=wait,
        before_sleep=log_retry,
        sleep=sleep,
        reraise=True,
    )


class PullProgress:
    """Logs a paginated pull's progress (pages, rows, the newest time reached) at most every
    ``every_seconds``, so a long pull is never silent."""

    def __init__(self, what: str, every_seconds: float = 10.0) -> None:
        self.what, self.every = what, every_seconds
        self.pages = self.rows = 0
        self._started = self._logged = time.monotonic()

    def page(self, rows: int, newest_ms: int | None = None) -> None:
        """Count one page of ``rows``, whose newest record is at ``newest_ms`` (UTC ms)."""
        self.pages += 1
        self.rows += rows
        now = time.monotonic()
        if now - self._logged >= self.every:
            self._logged = now
            newest = (
                f", up to {datetime.fromtimestamp(newest_ms / 1000, UTC):%Y-%m-%d %H:%M} UTC"
                if newest_ms is not None
                else ""
            )
            dg.get_dagster_logger().info(
                f"{self.what}: {self.pages} pages, {self.rows} rows in "
                f"{now - self._started:.0f}s{newest}"
            )


def time_pages(
    start_ms: int,
    end_ms: int,
    fetch_page: Callable[[int], Any],
    *,
    page_size: int,
    time_column: str,
    next_start: Callable[[Any], int],
    progress: PullProgress,
    stalled: Callable[[int, int], Exception] | None = None,
) -> list[Any]:
    """Every page of a range paged forward in time (Binance klines, Hyperliquid candles and
    funding): request from a cursor, move the cursor past the page's last record, stop at
    an empty page, a short page (fewer than ``page_size`` records) or the end of the range.

    Args:
        start_ms, end_ms: the range, UTC milliseconds, both inclusive.
        fetch_page: ``cursor -> table`` of one request from ``cursor`` to ``end_ms``
            (validated; ascending by ``time_column``).
        page_size: the most records a response holds (the request's limit).
        time_column: the column the pages ascend on (for the progress log).
        next_start: the next cursor after a full page (e.g. its last open time + 1 ms).
        progress: logs pages, rows and the newest time reached.
        stalled: the error to raise when the next cursor would not move forward
            ``(cursor, next) -> Exception``; without it such a page ends the paging.

    Returns:
        The non-empty pages, in order.
    """
    pages = []
    cursor = start_ms
    while cursor <= end_ms:
        page = fetch_page(cursor)
        if page.num_rows == 0:
            break
        pages.append(page)
        progress.page(page.num_rows, page[time_column][-1].value)
        if page.num_rows < page_size:
            break
        following = next_start(page)
        if following <= cursor:
            if stalled is not None:
                raise stalled(cursor, following)
            break
        cursor = following
    return pages


class ExchangeAPIError(RuntimeError):
    """An exchange refused a request (a 4xx that is not a rate limit, or an error body): not
    retried. Each venue's client raises its subclass (``BinanceAPIError``...).

    Attributes:
        status: the HTTP status.
        code: the exchange's own error code (Binance -1121, Deribit -32602), or ``None``.
        message: the exchange's error message (or its body, up to 1000 characters).
        source: the request, as in :class:`~mkt_platform.lib.contracts.ContractViolation`.
    """

    #: The exchange's name, for the message.
    venue = "The exchange"

    def __init__(self, status: int, code: int | None, message: str, source: str) -> None:
        self.status, self.code, self.message, self.source = status, code, message[:1000], source
        if code is None and message:
            text = f"{self.venue} answered {status} to {source}: {self.message[:300]}"
        else:
            text = f"{self.venue} answered {status} (code {code}: {self.message}) to {source}"
        super().__init__(text)


class ExchangeTransportError(RuntimeError):
    """The connection failed (timeout, refused, body cut off) on every attempt."""


class RetryableResponse(RuntimeError):
    """A rate limit or server error answer (5xx, 429, and what else the venue says), retried
    with backoff, or after ``Retry-After`` seconds when the exchange sends it."""

    def __init__(
        self, venue: str, status: int, retry_after: float | None, source: str, body: str
    ) -> None:
        self.status, self.retry_after = status, retry_after
        super().__init__(f"{venue} answered {status} to {source}: {body[:200]}")


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS context every client of this process verifies servers with: httpx's default
    (certifi's bundle, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``), built once. httpx builds one per
    client otherwise, loading the bundle each time: 55 ms, and a pull of 182 Deribit days opens
    a client per day (10 CPU-s of a 6-month backfill's raw pulls)."""
    return httpx.create_ssl_context()


class ExchangeClient(dg.ConfigurableResource):
    """The settings and plumbing every exchange client resource shares (subclass it).

    Every request goes through :meth:`_request`: bounded by ``deadline_seconds`` and
    ``max_response_bytes``, retried per :func:`retrying` on the subclass's retryable exception.
    """

    #: The exchange's name in messages (the subclass's ``ExchangeAPIError.venue``).
    venue: ClassVar[str] = ExchangeAPIError.venue

    #: Per-phase httpx timeout (connect is at most 5 s), seconds.
    timeout_seconds: float = 10.0
    #: Overall time for one request: connect, headers and the whole body, seconds.
    deadline_seconds: float = 30.0
    #: The largest response body accepted, bytes (a page of the largest endpoint is < 2 MB).
    max_response_bytes: int = 16 * 1024 * 1024
    max_attempts: int = 5
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    #: A ``Retry-After`` longer than this fails the request at once instead of stalling the run.
    retry_after_max_seconds: float = 30.0

    _transport: httpx.BaseTransport | None = PrivateAttr(default=None)
    _sleep: Callable[[float], None] = PrivateAttr(default=time.sleep)

    def with_transport(
        self,
        transport: httpx.BaseTransport | None,
        sleep: Callable[[float], None] | None = None,
    ) -> Any:
        """This client talking through ``transport`` (tests use ``httpx.MockTransport``;
        ``None``: httpx's default), waiting between retries with ``sleep`` (tests record the
        waits instead). Returns ``self``."""
        self._transport = transport
        if sleep is not None:
            self._sleep = sleep
        return self

    def _client(self, base_url: str) -> httpx.Client:
        return httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(self.timeout_seconds, connect=min(self.timeout_seconds, 5.0)),
            headers={"User-Agent": "mkt-platform/0.1", "Accept": "application/json"},
            transport=self._transport,
            verify=tls_context(),
        )

    def _retrying_on(
        self, retryable: type[Exception] | tuple[type[Exception], ...]
    ) -> tenacity.Retrying:
        return retrying(
            retryable,
            max_attempts=self.max_attempts,
            backoff_initial_seconds=self.backoff_initial_seconds,
            backoff_max_seconds=self.backoff_max_seconds,
            sleep=self._sleep,
        )

    def _request(
        self, http: httpx.Client, method: str, path: str, source: str, **kwargs: Any
    ) -> httpx.Response:
        """One bounded request (see :func:`bounded_request`)."""
        return bounded_request(
            http,
            method,
            path,
            deadline_seconds=self.deadline_seconds,
            max_bytes=self.max_response_bytes,
            source=source,
            **kwargs,
        )

    def _checked(
        self,
        response: httpx.Response,
        source: str,
        *,
        retryable: bool,
        refused: Callable[[str | None], ExchangeAPIError],
    ) -> httpx.Response:
        """``response`` if it succeeded; otherwise the error the retry loop acts on.

        Args:
            response: the exchange's answer.
            source: the request, for the messages.
            retryable: whether the venue's rules make this answer a retryable one (a rate
                limit, a server error).
            refused: the venue's :class:`ExchangeAPIError` for this answer; its argument is
                the reason when the platform gives up (a ``Retry-After`` too long), ``None``
                for the exchange's own error.

        Raises:
            RetryableResponse: a retryable answer (retried by :meth:`_fetch`).
            ExchangeAPIError: ``refused(...)``: a ``Retry-After`` beyond
                ``retry_after_max_seconds``, or any other 4xx/5xx answer.
        """
        if retryable:
            too_long = self._retry_after_too_long(response)
            if too_long is not None:
                raise refused(
                    f"Retry-After {too_long:.0f}s exceeds {self.retry_after_max_seconds:.0f}s"
                )
            raise RetryableResponse(
                self.venue,
                response.status_code,
                retry_after_seconds(response),
                source,
                response.text,
            )
        if response.status_code >= 400:
            raise refused(None)
        return response

    def _fetch(
        self,
        send: Callable[[], httpx.Response],
        decode: Callable[[httpx.Response], T],
        transport_error: type[Exception],
        source: str,
    ) -> tuple[httpx.Response, T]:
        """Send and decode one request, retrying retryable answers, transport errors and
        malformed bodies (an HTML page from a proxy: :class:`MalformedResponse`).

        Raises:
            transport_error: the connection failed on every attempt.
            MalformedResponse: still malformed after every attempt (the last body is
                quarantined first).
            RetryableResponse: still answered with a retryable status after every attempt.
        """

        def attempt() -> tuple[httpx.Response, T]:
            response = send()
            try:
                return response, decode(response)
            except MalformedResponse as exc:
                exc.body = response.content  # type: ignore[attr-defined]
                raise

        try:
            return self._retrying_on((RetryableResponse, MalformedResponse))(attempt)
        except httpx.TransportError as exc:
            raise transport_error(
                f"{source}: {type(exc).__name__} on all {self.max_attempts} attempts: {exc}"
            ) from exc
        except MalformedResponse as exc:
            with quarantine.on_violation(getattr(exc, "body", b"")):
                raise

    def _retry_after_too_long(self, response: httpx.Response) -> float | None:
        """The response's ``Retry-After`` when it exceeds ``retry_after_max_seconds``."""
        retry_after = retry_after_seconds(response)
        if retry_after is not None and retry_after > self.retry_after_max_seconds:
            return retry_after
        return None


def decode_json_body(
    response: httpx.Response,
    source: str,
    dataset: str,
    expected: str,
    parse_float: Callable[[str], Any] | None = None,
) -> Any:
    """The JSON body of an exchange's answer (numbers with a fraction decoded by
    ``parse_float``: ``Decimal`` where they must stay exact).

    Raises:
        MalformedResponse: an empty or undecodable body (an HTML page from a proxy, a body
            cut off), naming the dataset, the request and what came (its content type and
            start); retried by the clients like a 5xx.
    """
    if not response.content.strip():
        raise MalformedResponse(dataset, source, None, expected, "an empty body")
    try:
        return json.loads(response.content, parse_float=parse_float)
    except ValueError as exc:
        content_type = response.headers.get("Content-Type", "no content type")
        raise MalformedResponse(
            dataset,
            source,
            None,
            expected,
            f"undecodable {content_type} body ({exc}): {response.text[:120]!r}",
        ) from None
