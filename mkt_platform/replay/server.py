"""A local HTTP server that replays recorded exchange REST responses.

One ``ThreadingHTTPServer`` hosts every emulated exchange. Each exchange is an object
mounted at its own path prefix: a request to ``/binance/api/v3/klines`` reaches the Binance
handler as ``GET /api/v3/klines``. So a client whose live base URL is
``https://api.binance.com`` is pointed at ``http://HOST:PORT/binance`` and needs no other
change.

Handlers only ever turn a request into a :class:`Response`; they do not touch sockets. That
keeps each exchange testable on its own and lets the server change what they serve:

* :meth:`ReplayServer.inject` puts one-shot canned responses in front of a handler, for
  fault-injection tests (errors, cut-off bodies).
* :meth:`ReplayServer.mutate` registers a persistent :data:`Mutation` that rewrites every
  successful JSON answer of a handler until :meth:`ReplayServer.clear_mutations`, for tests
  of late data and schema drift (a day served truncated and then complete, a changed
  price, an added, dropped or re-typed field). Ready-made mutations that know each
  exchange's payload shape are in :mod:`mkt_platform.testing.mutations`.

With no mutation set, every answer is served byte for byte as the handler produced it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeAlias
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"


@dataclass(frozen=True)
class Response:
    """An HTTP response as a handler (or a fault-injection test) describes it.

    ``Content-Length`` is filled in from ``body`` unless ``headers`` sets it. Setting it
    larger than ``body`` makes the server send a truncated body and then drop the
    connection, which is how a cut-off transfer looks to a client.
    """

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def json(
        cls, payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        """A compact JSON response, like the exchanges send."""
        return cls.raw_json(json.dumps(payload, separators=(",", ":")).encode(), status, headers)

    @classmethod
    def raw_json(
        cls, body: bytes, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        """A response whose body is already serialised JSON (served byte for byte)."""
        return cls(status, {"Content-Type": JSON_CONTENT_TYPE, **(headers or {})}, body)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it reached an exchange handler (path without the exchange prefix)."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes

    def json(self) -> Any:
        """The request body decoded as JSON (POST APIs such as Hyperliquid's ``/info``)."""
        return json.loads(self.body)


Mutation: TypeAlias = Callable[[RecordedRequest, Any], Any]
"""Rewrites one decoded JSON answer: ``mutation(request, payload) -> new payload``.

It gets the request the answer is for (path without the exchange prefix) and the decoded
body; it may change the payload in place and return it, or return a new value. See
:meth:`ReplayServer.mutate`.
"""


class ExchangeHandler(Protocol):
    """What the router needs from one emulated exchange."""

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> Response:
        """Answer one request.

        Args:
            method: HTTP method, upper case.
            path: The request path with the exchange prefix removed, e.g. ``/api/v3/klines``.
            query: The parsed query string; blank values are kept so handlers can reject
                ``symbol=`` the way the exchange does.
            body: The raw request body (empty for GET).
        """
        ...


#: The platform's base-URL settings, and the mounted exchange each one is pointed at.
PLATFORM_BASE_URLS = {
    "BINANCE_BASE_URL": "binance",
    "HYPERLIQUID_BASE_URL": "hyperliquid",
    "DERIBIT_BASE_URL": "deribit",
    "DERIBIT_HISTORY_BASE_URL": "deribit_history",
    "POLYGON_BASE_URL": "polygon",
}
#: The API key the platform sends the replay's Polygon when none is set (the replay accepts
#: any key; the live Polygon would refuse this one).
REPLAY_POLYGON_KEY = "replay-accepts-any-key"
#: The instruments the recordings cover (the replay has no data for the others).
RECORDED_INSTRUMENTS = Path(__file__).resolve().parent / "recorded_instruments.yaml"


def default_handlers(data_dir: Path) -> dict[str, ExchangeHandler]:
    """The exchanges mounted when :class:`ReplayServer` is not given any, by name."""
    # Imported here because the exchange modules import Response from this module.
    from mkt_platform.replay.binance import BinanceHandler
    from mkt_platform.replay.deribit import DeribitHandler
    from mkt_platform.replay.hyperliquid import HyperliquidHandler
    from mkt_platform.replay.polygon import PolygonHandler

    return {
        "binance": BinanceHandler(data_dir / "binance"),
        "hyperliquid": HyperliquidHandler(data_dir / "hyperliquid"),
        # The live API serves the last 24 hours only; the history API everything.
        "deribit": DeribitHandler(data_dir / "deribit", max_age_ms=86_400_000),
        "deribit_history": DeribitHandler(data_dir / "deribit"),
        "polygon": PolygonHandler(data_dir / "polygon"),
    }


class ReplayServer:
    """Serves recorded exchange responses on ``http://HOST:PORT/<exchange>/...``.

    Use as a context manager, or call :meth:`start` and :meth:`stop`::

        with ReplayServer("/work/shared/data") as server:
            httpx.get(server.base_url("binance") + "/api/v3/klines", params=...)

    Test hooks: :meth:`inject` queues one-shot canned responses; :meth:`mutate` rewrites
    every later successful JSON answer of an exchange (until :meth:`clear_mutations`), e.g.
    ``server.mutate("binance", mutations.truncate_from(cutoff_ms))``; :meth:`requests` and
    :meth:`request_count` tell what reached an exchange. All are thread-safe.

    Args:
        data_dir: Folder of recordings with one subfolder per exchange (``binance/`` ...).
        host: Interface to bind.
        port: TCP port; 0 picks a free one (read it back from :attr:`url`).
        handlers: Exchange name -> handler; defaults to :func:`default_handlers`. The
            name is also the path prefix.
    """

    def __init__(
        self,
        data_dir: Path | str,
        host: str = "127.0.0.1",
        port: int = 0,
        handlers: Mapping[str, ExchangeHandler] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        if not self.data_dir.is_dir():
            raise FileNotFoundError(f"replay data dir {self.data_dir} is not a directory")
        self.host = host
        self.port = port
        self._handlers = dict(handlers if handlers is not None else default_handlers(self.data_dir))
        for name in self._handlers:
            if not name or "/" in name:
                raise ValueError(f"exchange name {name!r} cannot be used as a path prefix")
        self._lock = threading.Lock()
        self._injected: dict[str, deque[Response]] = {name: deque() for name in self._handlers}
        self._counts: dict[str, int] = dict.fromkeys(self._handlers, 0)
        self._log: dict[str, list[RecordedRequest]] = {name: [] for name in self._handlers}
        self._mutations: dict[str, list[Mutation]] = {name: [] for name in self._handlers}
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> ReplayServer:
        """Bind and serve in a daemon thread. Returns ``self`` for chaining."""
        if self._httpd is not None:
            raise RuntimeError("replay server is already running")
        httpd = _HTTPServer((self.host, self.port), _RequestHandler)
        httpd.replay = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"replay-server-{self.url}",
            daemon=True,
        )
        self._thread.start()
        logger.info("replay server listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and drop open connections. Safe to call twice."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        httpd.shutdown()
        # Keep-alive connections live in their own threads; without this a pooled client
        # could still get answers from a server that was stopped.
        httpd.close_connections()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Root URL of the running server, e.g. ``http://127.0.0.1:54321``."""
        if self._httpd is None:
            raise RuntimeError("replay server is not running; call start() first")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def base_url(self, exchange: str) -> str:
        """What replaces the exchange's live base URL, e.g. ``http://127.0.0.1:54321/binance``."""
        self._check_exchange(exchange)
        return f"{self.url}/{exchange}"

    def platform_environment(self) -> dict[str, str]:
        """The settings that point the platform at this server: each exchange base URL
        (``BINANCE_BASE_URL``...) at its mount, the instrument universe at what the
        recordings cover (:data:`RECORDED_INSTRUMENTS`) unless ``MKT_INSTRUMENTS_FILE`` is
        set, and a placeholder ``POLYGON_API_KEY`` (:data:`REPLAY_POLYGON_KEY`) unless one is
        set. ``mkt-platform materialize --replay`` and ``mkt-platform dev --replay`` apply it.
        """
        env = {
            variable: self.base_url(exchange)
            for variable, exchange in PLATFORM_BASE_URLS.items()
            if exchange in self._handlers
        }
        env["MKT_INSTRUMENTS_FILE"] = os.environ.get(
            "MKT_INSTRUMENTS_FILE", str(RECORDED_INSTRUMENTS)
        )
        if "polygon" in self._handlers and not os.environ.get("POLYGON_API_KEY"):
            env["POLYGON_API_KEY"] = REPLAY_POLYGON_KEY
        return env

    @property
    def exchanges(self) -> tuple[str, ...]:
        """Names (= path prefixes) of the mounted exchanges."""
        return tuple(self._handlers)

    # -- test hooks ----------------------------------------------------------------------

    def inject(self, exchange: str, responses: Iterable[Response]) -> None:
        """Queue canned responses for the next requests to ``exchange``, one per request.

        They are served first-in first-out, instead of the replayed answer, whatever the
        request was. Once the queue is empty, replay resumes.
        """
        self._check_exchange(exchange)
        with self._lock:
            self._injected[exchange].extend(responses)

    def mutate(self, exchange: str, mutation: Mutation) -> None:
        """Rewrite every later successful JSON answer of ``exchange`` with ``mutation``.

        From now on each 2xx answer of the exchange's handler whose ``Content-Type`` is JSON
        is decoded, passed through ``mutation(request, payload)`` and re-encoded compactly
        (like :meth:`Response.json`), with the same status and headers except
        ``Content-Length``. Several mutations compose in the order they were added. Injected
        responses, error answers (4xx, 5xx) and non-JSON bodies are served unchanged. A
        mutation that raises makes the request answer HTTP 500 ``replay: internal error``.

        Re-encoding keeps every value but not necessarily its spelling (a float is written
        as Python's shortest repr, e.g. ``5e-05``); the recordings in ``shared/data``
        round-trip byte for byte.

        Each request uses the mutations set when it arrived, so adding or clearing them
        while requests are in flight is safe.
        """
        self._check_exchange(exchange)
        if not callable(mutation):
            raise TypeError(f"mutation must be callable, got {type(mutation).__name__}")
        with self._lock:
            self._mutations[exchange].append(mutation)

    def clear_mutations(self, exchange: str | None = None) -> None:
        """Remove the mutations of ``exchange``, or of every exchange when it is ``None``.

        The answers are then served byte for byte as the handlers produce them again.
        """
        if exchange is not None:
            self._check_exchange(exchange)
        with self._lock:
            for name in self._handlers if exchange is None else (exchange,):
                self._mutations[name].clear()

    def request_count(self, exchange: str) -> int:
        """How many requests reached ``exchange`` so far, injected answers included."""
        self._check_exchange(exchange)
        with self._lock:
            return self._counts[exchange]

    def requests(self, exchange: str) -> list[RecordedRequest]:
        """Every request that reached ``exchange`` so far, oldest first (a copy)."""
        self._check_exchange(exchange)
        with self._lock:
            return list(self._log[exchange])

    # -- routing -------------------------------------------------------------------------

    def dispatch(
        self, method: str, target: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> Response:
        """Route one request (``target`` is the raw request path with query string).

        A handler with a ``handle_request(request, headers, base_url)`` method gets the
        request's headers (an API key, say: never recorded in the request log) and its own
        public base URL (for the absolute next-page links some exchanges send); the others
        get ``handle(method, path, query, body)``."""
        parts = urlsplit(target)
        exchange, _, rest = parts.path.lstrip("/").partition("/")
        handler = self._handlers.get(exchange)
        if handler is None:
            return _not_found(
                f"replay: nothing mounted at {parts.path!r}; "
                f"exchanges: {', '.join('/' + name for name in self._handlers)}"
            )
        request = RecordedRequest(
            method, "/" + rest, parse_qs(parts.query, keep_blank_values=True), body
        )
        with self._lock:
            self._counts[exchange] += 1
            self._log[exchange].append(request)
            queue = self._injected[exchange]
            injected = queue.popleft() if queue else None
            # A snapshot: mutate()/clear_mutations() while this request runs do not affect it.
            mutations = tuple(self._mutations[exchange])
        if injected is not None:
            logger.debug("replay: injected %s for %s %s", injected.status, method, target)
            return injected
        query = parse_qs(parts.query, keep_blank_values=True)
        try:
            if hasattr(handler, "handle_request"):
                host = (headers or {}).get("Host") or f"{self.host}:{self.port}"
                response = handler.handle_request(
                    request, dict(headers or {}), f"http://{host}/{exchange}"
                )
            else:
                response = handler.handle(method, "/" + rest, query, body)
            if mutations and 200 <= response.status < 300 and _is_json(response):
                response = _mutated(response, request, mutations)
            return response
        except Exception as exc:
            # A broken recording (or mutation) must fail loudly, never look like an exchange
            # answer.
            logger.exception(
                "replay: %s handler or mutation failed on %s %s", exchange, method, target
            )
            return Response.json({"code": -1, "msg": f"replay: internal error: {exc}"}, 500)

    def _check_exchange(self, exchange: str) -> None:
        if exchange not in self._handlers:
            raise KeyError(f"no exchange {exchange!r} mounted; have {sorted(self._handlers)}")


def _is_json(response: Response) -> bool:
    """Whether the response's ``Content-Type`` is JSON (``application/json``, ``...+json``)."""
    content_type = next((v for k, v in response.headers.items() if k.lower() == "content-type"), "")
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _mutated(
    response: Response, request: RecordedRequest, mutations: Iterable[Mutation]
) -> Response:
    """``response`` with its JSON body passed through ``mutations`` in order."""
    payload = json.loads(response.body)
    for mutation in mutations:
        payload = mutation(request, payload)
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return Response.json(payload, response.status, headers)


def _not_found(msg: str) -> Response:
    return Response.json({"code": -1, "msg": msg}, 404)


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that remembers its open connections so stop() can drop them."""

    daemon_threads = True
    replay: ReplayServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            # Already closed by the client: nothing to drop.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _RequestHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive, as the real APIs do, so connection-pooling clients behave
    # the same as in production.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without TCP_NODELAY a small response
    # waits ~40 ms on the delayed ACK, which would dominate replays of many small pages.
    disable_nagle_algorithm = True
    server_version = "mkt-platform-replay"
    # Idle keep-alive connections are closed after this many seconds.
    timeout = 60
    server: _HTTPServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _serve(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            # Not needed by any client we emulate; refusing is simpler than decoding.
            self.close_connection = True
            self._send(
                Response.json({"code": -1, "msg": "replay: chunked bodies unsupported"}, 411)
            )
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send(Response.json({"code": -1, "msg": "replay: bad Content-Length"}, 400))
            return
        body = self.rfile.read(length) if length else b""
        self._send(
            self.server.replay.dispatch(self.command, self.path, body, dict(self.headers.items()))
        )

    def _send(self, response: Response) -> None:
        headers = dict(response.headers)
        declared = next((v for k, v in headers.items() if k.lower() == "content-length"), None)
        if declared is None:
            headers["Content-Length"] = str(len(response.body))
        elif declared != str(len(response.body)):
            # A deliberately wrong length (truncation test): the connection cannot be
            # reused after it.
            self.close_connection = True
        if self.close_connection:
            headers["Connection"] = "close"
        self.send_response(response.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - " + format, self.address_string(), *args)
