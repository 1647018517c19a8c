"""Faults of a slow or hostile upstream: every request is bounded in time and size.

Issue 12, fault 4, reproduced against a real local HTTP server (loopback only): a body that
trickles at a few bytes a second held a pull for ~55 minutes a page (httpx's timeout is per
read); a server that ignores ``limit`` and sends huge pages was paged without end; a
``Retry-After: 100`` was honoured per attempt, silently.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mkt_platform.defs.binance.resources import (
    BinanceAPIError,
    BinanceSpotClient,
    BinanceTransportError,
)
from mkt_platform.defs.deribit.resources import DeribitClient
from mkt_platform.defs.hyperliquid.resources import HyperliquidClient
from mkt_platform.lib.contracts import ContractViolation
from mkt_platform.lib.http import ResponseTooLarge
from tests.conftest import SHARED_DATA

#: One real Binance kline (BTCUSDT 2023-01-01 00:00, SOURCES.md section 1).
KLINE = json.loads((SHARED_DATA / "binance" / "klines_BTCUSDT_1h_2023-01.json").read_text())[0]
HOUR_MS = 3_600_000


class Hostile:
    """A local HTTP server whose every answer is produced by ``behaviour(handler)``; it
    counts the bytes it managed to send."""

    def __init__(self, behaviour: Callable[[BaseHTTPRequestHandler], None]) -> None:
        self.sent = 0
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer.requests += 1
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    behaviour(self)

            do_POST = do_GET

            def send(self, data: bytes) -> None:
                self.wfile.write(data)
                self.wfile.flush()
                outer.sent += len(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> Hostile:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def trickle(handler) -> None:
    """A valid page, a byte every 0.2 s (it would take minutes to arrive)."""
    body = json.dumps([KLINE]).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    for i in range(len(body)):
        handler.send(body[i : i + 1])
        time.sleep(0.2)


def endless(handler) -> None:
    """A chunked body with no end (50 MB and more), as from a server ignoring ``limit``."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    chunk = (json.dumps(KLINE) + ",").encode() * 500
    handler.send(b"%x\r\n[\r\n" % 1)
    for _ in range(50 * 1024 * 1024 // len(chunk)):
        handler.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))


def declared_huge(handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(50 * 1024 * 1024))
    handler.end_headers()
    handler.send(b"[")
    time.sleep(1)


def json_answer(body: object, status: int = 200, headers: dict | None = None):
    def answer(handler) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.send(data)

    return answer


@pytest.fixture
def binance() -> Iterator[Callable[..., BinanceSpotClient]]:
    def make(url: str, **settings) -> BinanceSpotClient:
        defaults = {"max_attempts": 2, "backoff_initial_seconds": 0.01, "backoff_max_seconds": 0.02}
        return BinanceSpotClient(base_url=url, **{**defaults, **settings})

    yield make


def fetch(client: BinanceSpotClient):
    return client.fetch_klines("BTCUSDT", "1h", KLINE[0], KLINE[0] + 23 * HOUR_MS)


def test_a_trickling_body_is_cut_at_the_deadline_and_retried_then_fails(binance, caplog):
    with Hostile(trickle) as server, caplog.at_level(logging.WARNING):
        started = time.monotonic()
        with pytest.raises(BinanceTransportError) as error:
            fetch(binance(server.url, deadline_seconds=1.0))
        elapsed = time.monotonic() - started
    assert "DeadlineExceeded on all 2 attempts" in str(error.value)
    assert "no complete answer within 1s (deadline_seconds" in str(error.value)
    assert server.requests == 2
    assert elapsed < 5, f"bounded by 2 deadlines and a backoff, took {elapsed:.1f}s"
    assert any("attempt 1/2 failed" in r.message and "waiting" in r.message for r in caplog.records)


@pytest.mark.parametrize("behaviour", [endless, declared_huge], ids=["chunked", "content-length"])
def test_an_oversized_body_fails_at_the_cap_without_reading_it(binance, behaviour):
    with Hostile(behaviour) as server, pytest.raises(ResponseTooLarge) as error:
        fetch(binance(server.url, max_response_bytes=1024 * 1024))
    assert "response body too large" in str(error.value)
    assert "GET /api/v3/klines symbol=BTCUSDT" in str(error.value)
    assert server.requests == 1, "a body too large is not retried"
    assert server.sent < 10 * 1024 * 1024, "reading stopped near the cap"


def test_a_page_with_more_klines_than_limit_is_a_contract_error(binance):
    """1,001 klines to a request for 1,000: the server ignores ``limit``; paging on would
    never end (or skip klines)."""
    rows = [[KLINE[0] + i * HOUR_MS, *KLINE[1:]] for i in range(1001)]
    with Hostile(json_answer(rows)) as server, pytest.raises(ContractViolation) as error:
        binance(server.url).fetch_klines("BTCUSDT", "1h", KLINE[0], KLINE[0] + 2000 * HOUR_MS)
    assert "expected at most 1000 klines" in str(error.value)
    assert "observed 1001 klines: the server ignored the page size" in str(error.value)


def test_hyperliquid_and_deribit_pages_over_their_size_are_contract_errors():
    candle = {"t": 0, "T": 1, "s": "BTC", "i": "1h", "o": "1", "c": "1", "h": "1", "l": "1",
              "v": "1", "n": 1}  # fmt: skip
    with (
        Hostile(json_answer([candle] * 5001)) as server,
        pytest.raises(ContractViolation, match="at most 5000 candles"),
    ):
        HyperliquidClient(base_url=server.url).fetch_candles("BTC", "1h", 0, HOUR_MS * 6000)
    trades = {"jsonrpc": "2.0", "result": {"trades": [{}] * 11, "has_more": True}}
    with Hostile(json_answer(trades)) as server:
        client = DeribitClient(base_url=server.url, history_base_url=server.url, page_size=10)
        with pytest.raises(ContractViolation, match="at most 10 trades"):
            list(client.iter_option_trade_pages("BTC", 0, 1000, history=True))


def test_a_retry_after_beyond_the_cap_fails_at_once(binance):
    answer = json_answer({"code": -1003, "msg": "Too many requests"}, 429, {"Retry-After": "100"})
    with Hostile(answer) as server:
        started = time.monotonic()
        with pytest.raises(BinanceAPIError, match=r"Retry-After 100s exceeds 30s"):
            fetch(binance(server.url, max_attempts=5))
    assert server.requests == 1
    assert time.monotonic() - started < 2


def test_a_short_retry_after_is_waited_and_logged(binance, caplog):
    answers = iter(
        [
            json_answer({"code": -1003, "msg": "busy"}, 429, {"Retry-After": "1"}),
            json_answer([KLINE]),
        ]
    )
    with (
        Hostile(lambda handler: next(answers)(handler)) as server,
        caplog.at_level(logging.WARNING),
    ):
        table = fetch(binance(server.url))
    assert table.num_rows == 1
    assert any("waiting 1.0s (Retry-After)" in r.message for r in caplog.records)
