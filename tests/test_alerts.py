"""``send_alert`` against a real local HTTP receiver: delivery, retries, failures, secrecy."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from mkt_platform import settings
from mkt_platform.lib.alerts import Alert, send_alert

SECRET_PATH = "/hooks/SECRET-TOKEN-123"
LOGGER_NAME = "mkt_platform.tests.alerts"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: records each request and answers with the next of
    ``statuses`` (the last one repeats forever). An entry ``(status, delay)`` answers after
    ``delay`` seconds."""

    port: int
    statuses: list[int | tuple[int, float]] = field(default_factory=lambda: [200])
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{SECRET_PATH}"

    def next_answer(self, request: Received) -> tuple[int, float]:
        with self.lock:
            self.requests.append(request)
            answer = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return answer if isinstance(answer, tuple) else (answer, 0.0)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            request = Received(
                "POST", self.path, dict(self.headers.items()), self.rfile.read(length)
            )
            status, delay = state.next_answer(request)
            if delay:
                time.sleep(delay)
            body = b'{"ok": true}' if 200 <= status < 300 else b'{"ok": false}'
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:  # the client gave up (timeout)
                pass

        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state = Receiver(port=server.server_address[1])
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> logging.Logger:
    caplog.set_level(logging.DEBUG)
    return logging.getLogger(LOGGER_NAME)


@pytest.fixture(autouse=True)
def no_env_webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MKT_ALERT_WEBHOOK_URL", raising=False)


def freshness_alert(**overrides: object) -> Alert:
    fields: dict = {
        "kind": "freshness",
        "summary": "latest closed partition 2023-03-24 is 2h05m late (tolerance 15m)",
        "asset_key": "binance_klines_1h",
        "details": {"partition": "2023-03-24", "lag_seconds": 7500, "tolerance_seconds": 900},
    }
    fields.update(overrides)
    return Alert(**fields)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alert_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER_NAME]


def test_payload_delivered_as_json(receiver: Receiver, log, caplog, monkeypatch) -> None:
    monkeypatch.setattr(settings, "utcnow", lambda: datetime(2023, 3, 24, 10, 5, tzinfo=UTC))
    alert = freshness_alert()
    sleeps: list[float] = []

    assert send_alert(alert, log, webhook_url=receiver.url, sleep=sleeps.append) is True

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request.method == "POST"
    assert request.path == SECRET_PATH
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {
        "source": "mkt_platform",
        "kind": "freshness",
        "severity": "error",
        "summary": alert.summary,
        "asset_key": "binance_klines_1h",
        "details": alert.details,
        "sent_at": "2023-03-24T10:05:00+00:00",
    }
    assert sleeps == []
    records = alert_records(caplog)
    assert [(r.levelname, r.getMessage()) for r in records] == [
        (
            "ERROR",
            "ALERT [freshness] binance_klines_1h: latest closed partition 2023-03-24 is 2h05m "
            "late (tolerance 15m) "
            'details={"lag_seconds":7500,"partition":"2023-03-24","tolerance_seconds":900}',
        )
    ]


def test_payload_shape_and_sent_at_is_utc() -> None:
    alert = Alert(
        kind="schema_drift",
        summary="klines field close: expected string, observed number",
        asset_key=None,
        details={"dataset": "klines", "field": "close", "expected": "str", "observed": "float"},
        severity="warning",
    )
    payload = alert.payload()
    assert json.loads(json.dumps(payload)) == payload
    assert payload["asset_key"] is None
    assert payload["severity"] == "warning"
    sent_at = datetime.fromisoformat(payload["sent_at"])
    assert sent_at.utcoffset() is not None and sent_at.utcoffset().total_seconds() == 0
    assert hash(alert) == hash(alert)  # frozen and usable in a set despite the dict field


def test_warning_severity_logs_a_warning(log, caplog) -> None:
    alert = Alert(
        kind="schema_drift",
        summary="binance klines: unexpected field 'x'",
        asset_key=None,
        details={},
        severity="warning",
    )
    assert send_alert(alert, log, webhook_url=None) is True
    assert [(r.levelname, r.getMessage()) for r in alert_records(caplog)] == [
        ("WARNING", "ALERT [schema_drift] binance klines: unexpected field 'x'")
    ]


def test_retries_5xx_then_delivers(receiver: Receiver, log, caplog) -> None:
    receiver.statuses = [500, 500, 200]
    sleeps: list[float] = []

    delivered = send_alert(
        freshness_alert(),
        log,
        webhook_url=receiver.url,
        max_attempts=3,
        backoff_initial_seconds=0.5,
        sleep=sleeps.append,
    )

    assert delivered is True
    assert len(receiver.requests) == 3
    assert len({r.body for r in receiver.requests}) == 1  # the same body each attempt
    # exponential backoff from 0.5 s (0.5, 1.0) plus the shared policy's jitter (< 1 s)
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.5
    assert 1.0 <= sleeps[1] <= 2.0
    assert not [r for r in alert_records(caplog) if "delivery failed" in r.getMessage()]


def test_429_is_retried(receiver: Receiver, log) -> None:
    receiver.statuses = [429, 200]
    sleeps: list[float] = []
    assert send_alert(freshness_alert(), log, webhook_url=receiver.url, sleep=sleeps.append)
    assert len(receiver.requests) == 2
    assert len(sleeps) == 1


def test_5xx_forever_gives_up_after_max_attempts(receiver: Receiver, log, caplog) -> None:
    receiver.statuses = [503]
    sleeps: list[float] = []

    delivered = send_alert(
        freshness_alert(), log, webhook_url=receiver.url, max_attempts=4, sleep=sleeps.append
    )

    assert delivered is False
    assert len(receiver.requests) == 4
    assert len(sleeps) == 3
    failures = [r for r in alert_records(caplog) if "delivery failed" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].levelname == "ERROR"
    assert failures[0].getMessage() == (
        "alert webhook delivery failed after 4 attempts: HTTP 503 Service Unavailable "
        "(webhook http://127.0.0.1)"
    )


def test_4xx_is_not_retried(receiver: Receiver, log, caplog) -> None:
    receiver.statuses = [400, 200]
    sleeps: list[float] = []

    assert (
        send_alert(freshness_alert(), log, webhook_url=receiver.url, sleep=sleeps.append) is False
    )

    assert len(receiver.requests) == 1
    assert sleeps == []
    assert any(
        r.getMessage().startswith("alert webhook delivery failed after 1 attempt: HTTP 400")
        for r in alert_records(caplog)
    )


def test_unreachable_receiver_returns_false(log, caplog) -> None:
    url = f"http://127.0.0.1:{closed_port()}{SECRET_PATH}"
    sleeps: list[float] = []

    assert send_alert(freshness_alert(), log, webhook_url=url, sleep=sleeps.append) is False

    assert len(sleeps) == 2  # connection errors are retried: 3 attempts
    messages = [r.getMessage() for r in alert_records(caplog)]
    assert any(
        m.startswith("alert webhook delivery failed after 3 attempts: Connect") for m in messages
    )


def test_timeout_is_retried(receiver: Receiver, log) -> None:
    # The first answer comes after the timeout; the second at once, well within it even on a
    # loaded machine (a round trip to a server in this process).
    receiver.statuses = [(200, 3.0), 200]
    sleeps: list[float] = []

    delivered = send_alert(
        freshness_alert(), log, webhook_url=receiver.url, timeout_seconds=1.0, sleep=sleeps.append
    )

    assert delivered is True
    assert len(receiver.requests) == 2
    assert len(sleeps) == 1


def test_no_url_only_logs(receiver: Receiver, log, caplog) -> None:
    assert settings.alert_webhook_url() is None  # env unset by the autouse fixture

    assert send_alert(freshness_alert(), log, sleep=pytest.fail) is True

    assert receiver.requests == []
    records = alert_records(caplog)
    assert len(records) == 1
    assert records[0].getMessage().startswith("ALERT [freshness] binance_klines_1h: ")


def test_env_url_is_the_default(receiver: Receiver, log, monkeypatch) -> None:
    monkeypatch.setenv("MKT_ALERT_WEBHOOK_URL", receiver.url)

    assert send_alert(freshness_alert(), log) is True

    assert len(receiver.requests) == 1
    assert receiver.requests[0].path == SECRET_PATH


def test_explicit_none_disables_the_env_url(receiver: Receiver, log, monkeypatch) -> None:
    monkeypatch.setenv("MKT_ALERT_WEBHOOK_URL", receiver.url)
    assert send_alert(freshness_alert(), log, webhook_url=None) is True
    assert receiver.requests == []


@pytest.mark.parametrize("scenario", ["503", "400", "unreachable", "delivered"])
def test_url_never_logged(scenario: str, receiver: Receiver, log, caplog) -> None:
    if scenario == "unreachable":
        url = f"http://user:pw-SECRET@127.0.0.1:{closed_port()}{SECRET_PATH}?token=SECRET-Q"
    else:
        receiver.statuses = [{"503": 503, "400": 400, "delivered": 200}[scenario]]
        url = receiver.url + "?token=SECRET-Q"

    send_alert(freshness_alert(), log, webhook_url=url, sleep=lambda _: None)

    assert caplog.records  # the alert line at least (and dagster's retry warnings)
    text = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    for secret in ("SECRET", "/hooks", "token", "pw-", url):
        assert secret not in text
    if scenario != "unreachable":  # httpx logs each request's URL at INFO: redacted
        httpx_lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
        assert httpx_lines
        assert all("<webhook>" in line for line in httpx_lines)


def test_never_raises_on_bad_url_or_broken_logger(log) -> None:
    assert send_alert(freshness_alert(), log, webhook_url="not a url") is False
    assert send_alert(freshness_alert(), log, webhook_url="ftp://example.invalid/x") is False

    class BrokenLog:
        def error(self, msg: str) -> None:
            raise RuntimeError("log down")

        warning = error

    assert send_alert(freshness_alert(), BrokenLog(), webhook_url=None) is True


def test_dagster_context_log(receiver: Receiver) -> None:
    context = dg.build_op_context()
    receiver.statuses = [200]
    assert send_alert(freshness_alert(), context.log, webhook_url=receiver.url) is True
    assert send_alert(freshness_alert(severity="warning"), context.log, webhook_url=None) is True
    assert len(receiver.requests) == 1


def test_the_webhook_is_a_resource_configured_by_env_var(data_dir, monkeypatch) -> None:
    """The sensors' alert receiver is the ``alert_webhook`` resource: its URL comes from
    ``MKT_ALERT_WEBHOOK_URL`` as a Dagster ``EnvVar`` (the UI shows the variable's name,
    never the URL and its token); without the variable alerts are only logged."""
    from mkt_platform.definitions import build_definitions
    from mkt_platform.lib.alerts import AlertWebhook

    monkeypatch.setenv("MKT_ALERT_WEBHOOK_URL", "https://hooks.example/services/T0K3N")
    defs = build_definitions()
    resource = defs.resources["alert_webhook"]
    assert isinstance(resource, AlertWebhook)
    assert isinstance(resource.url, dg.EnvVar)
    assert resource.url.env_var_name == "MKT_ALERT_WEBHOOK_URL"
    assert "T0K3N" not in repr(resource)
    for name in ("freshness_sensor", "schema_drift_sensor"):
        assert "alert_webhook" in defs.resolve_sensor_def(name).required_resource_keys

    monkeypatch.delenv("MKT_ALERT_WEBHOOK_URL")
    assert build_definitions().resources["alert_webhook"].url is None
