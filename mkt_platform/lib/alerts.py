"""One alert path for the platform: a log line always, and a JSON webhook when configured.

Sensors call :func:`send_alert` when a raw asset goes stale (``kind="freshness"``) or an
exchange payload drifts from its contract (``kind="schema_drift"``)::

    send_alert(
        Alert(
            kind="freshness",
            summary="latest closed partition 2023-03-24 is 2h05m late (tolerance 15m)",
            asset_key="binance_klines_1h",
            details={"partition": "2023-03-24", "lag_seconds": 7500, "tolerance_seconds": 900},
        ),
        context.log,
    )

which logs (``log.error``; ``log.warning`` for ``severity="warning"``)::

    ALERT [freshness] binance_klines_1h: latest closed partition 2023-03-24 is 2h05m late
    (tolerance 15m) details={"lag_seconds":7500,"partition":"2023-03-24",...}

(on one line) and, when ``MKT_ALERT_WEBHOOK_URL`` is set, POSTs :meth:`Alert.payload` to it
as JSON, retrying with the platform's shared tenacity policy (:func:`mkt_platform.lib.http.
retrying`). :func:`send_alert` never raises: a sensor must keep running when the alert
receiver is down. The webhook URL is a secret (it often embeds a token): it is never logged
nor put in an exception message; only its scheme and host are.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import dagster as dg
import httpx

from mkt_platform import settings
from mkt_platform.lib.http import ResponseTooLarge, bounded_request, retrying

#: ``source`` of every webhook body.
ALERT_SOURCE: Final = "mkt_platform"
#: Accepted values of :attr:`Alert.severity`.
SEVERITIES: Final = ("error", "warning")
#: Cap of one backoff wait between webhook attempts, seconds.
BACKOFF_MAX_SECONDS: Final = 30.0
#: The most time one :func:`send_alert` takes when no budget is given, seconds.
DEFAULT_BUDGET_SECONDS: Final = 10.0
#: The most time a sensor tick's alerts take together, seconds. Dagster ends a sensor tick
#: after 60 s: a webhook that accepts and never answers must not take the tick with it.
TICK_BUDGET_SECONDS: Final = 15.0


class AlertBudget:
    """The time a caller (a sensor tick) lets its alerts take, shared by every
    :func:`send_alert` it passes the budget to: each attempt's timeout and each backoff wait
    is cut to what remains, and once it is spent the remaining alerts are logged only."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._deadline = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left (0 when spent)."""
        return max(0.0, self._deadline - time.monotonic())


class _Default(enum.Enum):
    FROM_SETTINGS = "from settings"


#: Default of ``send_alert(webhook_url=...)``: read ``MKT_ALERT_WEBHOOK_URL`` at call time.
FROM_SETTINGS: Final = _Default.FROM_SETTINGS


@dataclass(frozen=True)
class Alert:
    """Something a person must look at.

    Attributes:
        kind: what went wrong, a short identifier: ``"freshness"``, ``"schema_drift"``, ...
        summary: one line, what a person reads first, e.g. ``"latest closed partition
            2023-03-24 is 2h05m late (tolerance 15m)"``.
        asset_key: the asset concerned as a string (``"binance_klines_1h"``,
            ``"raw/deribit_trades"``), or ``None`` when the alert is not about one asset.
        details: JSON-serialisable facts behind the summary, e.g. ``{"lag_seconds": 7500,
            "partition": "2023-03-24"}`` or ``{"dataset": "klines", "field": "close",
            "expected": "string", "observed": "number"}``.
        severity: ``"error"`` (default) or ``"warning"``.
    """

    kind: str
    summary: str
    asset_key: str | None = None
    details: dict[str, Any] = field(default_factory=dict, hash=False)
    severity: str = "error"

    def payload(self) -> dict[str, Any]:
        """The JSON body POSTed to the webhook::

            {
                "source": "mkt_platform",
                "kind": "freshness",
                "severity": "error",
                "summary": "latest closed partition 2023-03-24 is 2h05m late (tolerance 15m)",
                "asset_key": "binance_klines_1h",          # or null
                "details": {"lag_seconds": 7500, "partition": "2023-03-24"},
                "sent_at": "2023-03-24T10:05:00+00:00"     # ISO-8601, UTC, seconds
            }

        ``sent_at`` is the time of this call (:func:`mkt_platform.settings.utcnow`).
        ``details`` is a shallow copy of the alert's.
        """
        return {
            "source": ALERT_SOURCE,
            "kind": self.kind,
            "severity": self.severity,
            "summary": self.summary,
            "asset_key": self.asset_key,
            "details": dict(self.details),
            "sent_at": settings.utcnow().isoformat(timespec="seconds"),
        }

    def log_line(self) -> str:
        """The one log line of the alert: ``ALERT [{kind}] {asset_key}: {summary}
        details={compact JSON}``. The asset key is left out when ``None`` or when the summary
        already starts with it; ``details=`` is left out when empty; newlines become spaces."""
        summary = " ".join(self.summary.split())
        if self.asset_key and not summary.startswith(self.asset_key):
            summary = f"{self.asset_key}: {summary}"
        line = f"ALERT [{self.kind}] {summary}"
        if self.details:
            line += f" details={_compact_json(self.details)}"
        return line


class AlertWebhook(dg.ConfigurableResource):
    """The sensors' alert receiver, a Dagster resource: every alert is logged, and POSTed as
    JSON to ``url`` when one is configured (see :func:`send_alert`).

    In the definitions ``url`` is ``dg.EnvVar("MKT_ALERT_WEBHOOK_URL")`` when that variable
    is set (:meth:`from_env`): the UI shows the variable's name, never the URL, which often
    embeds a token. Unset: alerts are only logged.
    """

    url: str | None = None

    @classmethod
    def from_env(cls) -> AlertWebhook:
        """The resource of the definitions: the URL as an ``EnvVar`` when it is set."""
        if settings.alert_webhook_url() is None:
            return cls()
        return cls(url=dg.EnvVar(settings.ALERT_WEBHOOK_URL_ENV))

    def send(self, alert: Alert, log: Any, *, budget: AlertBudget | None = None) -> bool:
        """:func:`send_alert` to this receiver (``False`` when delivery failed; never raises)."""
        url = self.url
        if isinstance(url, dg.EnvVar):
            # Dagster resolves it when it builds the resource for a tick; a sensor called
            # directly (a test) gets the resource as declared.
            url = url.get_value()
        return send_alert(alert, log, webhook_url=(url or "").strip() or None, budget=budget)


class _WebhookRetryable(Exception):
    """A webhook answer or failure worth retrying (5xx, 429, timeout, transport error).

    The message never holds the URL. ``retry_after`` is always ``None``: the shared policy's
    exponential backoff applies, whatever ``Retry-After`` the receiver sent.
    """

    retry_after: float | None = None


class _WebhookRejected(Exception):
    """A webhook answer not worth retrying (a 4xx other than 429, a 3xx)."""


def send_alert(
    alert: Alert,
    log: logging.Logger | Any,
    *,
    webhook_url: str | Literal[_Default.FROM_SETTINGS] | None = FROM_SETTINGS,
    max_attempts: int = 3,
    backoff_initial_seconds: float = 0.5,
    timeout_seconds: float = 5.0,
    sleep: Callable[[float], None] = time.sleep,
    budget: AlertBudget | None = None,
) -> bool:
    """Log ``alert`` and, when a webhook is configured, POST it there as JSON. Never raises.

    Args:
        alert: what to report.
        log: a ``logging.Logger`` or Dagster's ``context.log`` (anything with ``.error`` and
            ``.warning``). Gets the alert line (:meth:`Alert.log_line`) first, as ``error``
            or ``warning`` per ``alert.severity`` (an unknown severity logs as ``error``), then
            one ``error`` line if the webhook delivery fails.
        webhook_url: where to POST; by default ``MKT_ALERT_WEBHOOK_URL``
            (:func:`mkt_platform.settings.alert_webhook_url`), read at call time. ``None`` or
            blank: log only.
        max_attempts: webhook attempts in all, the first included (at least 1).
        backoff_initial_seconds: multiplier of the exponential backoff between attempts
            (waits of about ``b``, ``2b``, ``4b``... seconds plus up to 1 s of jitter, each
            capped at ``BACKOFF_MAX_SECONDS``).
        timeout_seconds: timeout of each HTTP attempt (connect, write, read).
        sleep: how to wait between attempts (tests pass a recorder).
        budget: the time this delivery may take, shared with the caller's other alerts (a
            sensor tick's :class:`AlertBudget`); default :data:`DEFAULT_BUDGET_SECONDS` for
            this call alone. Each attempt (connect, headers and body) and each backoff wait is
            cut to what remains; when nothing remains the alert is logged, not POSTed.

    Returns:
        ``True`` when the alert was delivered (a 2xx answer) or when no webhook is configured
        (nothing more to do: the log line is the alert). ``False`` when delivery failed.

    Errors handled (each makes the call return ``False`` after logging
    ``alert webhook delivery failed after N attempts: <reason> (webhook <scheme>://<host>)``):

    * retried, up to ``max_attempts``: timeouts and transport errors (refused connection,
      DNS failure, reset), HTTP 5xx and 429;
    * not retried: the budget spent (``alert budget of N s spent``), any other non-2xx
      answer (4xx, and 3xx: redirects are not followed), an
      invalid URL or one whose scheme is not http(s), a body that cannot be encoded as JSON
      (non-serialisable ``details`` are sent through ``str``, so this is rare), and any other
      unexpected exception.

    The webhook URL never appears in a log line or exception message (only its scheme and
    host do); retries are logged as warnings on the Dagster logger by the shared policy.
    httpx logs every request's full URL at INFO on the ``httpx`` logger: a filter installed
    on that logger replaces the webhook's path, query and user info with ``<webhook>``.
    """
    with contextlib.suppress(Exception):  # a broken logger must not break the sensor either
        _log_alert(alert, log)

    try:
        url = settings.alert_webhook_url() if webhook_url is FROM_SETTINGS else webhook_url
    except Exception as exc:
        _log_failure(log, 0, f"cannot read the webhook setting: {type(exc).__name__}", None)
        return False
    url = str(url).strip() if url is not None else ""
    if not url:
        return True

    attempts = 0
    budget = budget or AlertBudget(DEFAULT_BUDGET_SECONDS)
    try:
        _hide_from_httpx_log(url)
        body = json.dumps(alert.payload(), default=str).encode()
        policy = retrying(
            _WebhookRetryable,
            max_attempts=max(1, int(max_attempts)),
            backoff_initial_seconds=backoff_initial_seconds,
            backoff_max_seconds=BACKOFF_MAX_SECONDS,
            sleep=lambda seconds: sleep(min(seconds, budget.remaining())),
        )
        with httpx.Client(timeout=timeout_seconds, follow_redirects=False) as http:

            def attempt() -> None:
                nonlocal attempts
                remaining = budget.remaining()
                if remaining <= 0.05:
                    raise _WebhookRejected(f"alert budget of {budget.seconds:.0f}s spent")
                attempts += 1
                _post(http, url, body, min(timeout_seconds, remaining))

            policy(attempt)
    except (_WebhookRetryable, _WebhookRejected) as exc:
        _log_failure(log, attempts, str(exc), url)
        return False
    except httpx.InvalidURL:  # its message may quote parts of the URL: leave it out
        _log_failure(log, attempts, "InvalidURL: the webhook URL cannot be parsed", url)
        return False
    except Exception as exc:
        _log_failure(log, attempts, _redact(f"{type(exc).__name__}: {exc}", url), url)
        return False
    return True


def _post(http: httpx.Client, url: str, body: bytes, seconds: float) -> None:
    """One POST of ``body`` that takes at most ``seconds`` in all; returns on 2xx, raises
    :class:`_WebhookRetryable` or :class:`_WebhookRejected` (messages without the URL)
    otherwise."""
    try:
        response = bounded_request(
            http,
            "POST",
            url,
            deadline_seconds=seconds,
            max_bytes=1024 * 1024,
            source="alert webhook",
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=seconds,
        )
    except ResponseTooLarge:
        raise _WebhookRejected("the webhook's answer is over 1 MiB") from None
    except httpx.UnsupportedProtocol as exc:  # e.g. "ftp://": retrying cannot help
        raise _WebhookRejected(_redact(f"{type(exc).__name__}: {exc}", url)) from None
    except (httpx.TimeoutException, httpx.TransportError) as exc:
        # httpx messages seldom hold the URL, but the URL is a secret: redact all the same.
        raise _WebhookRetryable(_redact(f"{type(exc).__name__}: {exc}", url)) from None
    status = response.status_code
    if 200 <= status < 300:
        return
    reason = f"HTTP {status} {response.reason_phrase}".rstrip()
    if status == 429 or status >= 500:
        raise _WebhookRetryable(reason)
    raise _WebhookRejected(reason)


def _log_alert(alert: Alert, log: Any) -> None:
    line = alert.log_line()
    if alert.severity == "warning":
        log.warning(line)
    else:
        log.error(line)


def _log_failure(log: Any, attempts: int, reason: str, url: str | None) -> None:
    where = f" (webhook {_scheme_and_host(url)})" if url is not None else ""
    noun = "attempt" if attempts == 1 else "attempts"
    with contextlib.suppress(Exception):
        log.error(f"alert webhook delivery failed after {attempts} {noun}: {reason}{where}")


def _scheme_and_host(url: str) -> str:
    """``scheme://host`` of ``url`` (no user info, port, path or query), or a placeholder."""
    try:
        parsed = httpx.URL(url)
    except Exception:
        return "<invalid URL>"
    if not parsed.scheme or not parsed.host:
        return "<invalid URL>"
    return f"{parsed.scheme}://{parsed.host}"


def _redact(text: str, url: str) -> str:
    """``text`` with the URL, and its secret-bearing parts, replaced by ``<webhook>``."""
    secrets = [url]
    try:
        parsed = httpx.URL(url)
        secrets += [parsed.userinfo.decode(errors="replace"), parsed.query.decode("ascii")]
        if parsed.path not in ("", "/"):
            secrets += [parsed.raw_path.decode("ascii"), parsed.path]
    except Exception:
        pass
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "<webhook>")
    return text


class _RedactWebhookUrls(logging.Filter):
    """Rewrites records of the ``httpx`` logger that mention a webhook URL (httpx logs
    ``HTTP Request: POST <full URL> "HTTP/1.1 200 OK"`` at INFO) so the secret parts are
    replaced by ``<webhook>``. Records not mentioning a webhook pass through unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        urls = tuple(self.urls)
        if not urls:
            return True
        try:
            message = record.getMessage()
        except Exception:
            return True
        redacted = message
        for url in urls:
            redacted = _redact(redacted, url)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


_HTTPX_FILTER = _RedactWebhookUrls()
_HTTPX_FILTER_LOCK = threading.Lock()


def _hide_from_httpx_log(url: str) -> None:
    """Make sure the ``httpx`` logger never shows ``url``'s secret parts."""
    with _HTTPX_FILTER_LOCK:
        _HTTPX_FILTER.urls.add(url)
        httpx_logger = logging.getLogger("httpx")
        if _HTTPX_FILTER not in httpx_logger.filters:
            httpx_logger.addFilter(_HTTPX_FILTER)


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
