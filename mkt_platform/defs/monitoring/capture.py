"""The capture service's silence: an alert, through the alert path of freshness and drift,
when a stream has received nothing for 15 minutes, or when the capture itself has not
reported for 15 minutes (its process dead or hung).

The capture writes its status (``$MKT_DATA_DIR/capture/status.json``, see
:mod:`mkt_platform.capture.service`) at start, every 5 minutes and at stop. No status file:
no capture runs here, nothing to say. Each silence is alerted once (its signature holds the
time of the last message), and again only after the stream has spoken and gone silent anew.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg

from mkt_platform import settings
from mkt_platform.lib.alerts import TICK_BUDGET_SECONDS, Alert, AlertBudget, AlertWebhook

#: How long a stream, or the capture's status, may stay silent before an alert.
SILENCE = timedelta(minutes=15)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def _age(ms: int, now_ms: int) -> str:
    minutes = (now_ms - ms) // 60_000
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes} min"


def silences(status: dict, now_ms: int) -> dict[str, Alert]:
    """The silences in a capture status at ``now_ms`` (UTC ms), by signature."""
    found: dict[str, Alert] = {}
    limit = SILENCE.total_seconds() * 1000
    written = status["written_at_ms"]
    if now_ms - written > limit:
        found[f"status|{written}"] = Alert(
            kind="capture_silence",
            summary=(
                f"the capture has not reported for {_age(written, now_ms)} (last status "
                f"{_iso(written)}): its process may be dead or hung"
            ),
            details={"last_status": _iso(written)},
        )
        return found  # its streams' figures are as old as the status: nothing more to say
    for name, stream in sorted(status["streams"].items()):
        last = stream.get("last_message_ms") or status.get("started_at_ms") or written
        if now_ms - last > limit:
            state = "connected" if stream.get("connected") else "disconnected"
            found[f"stream|{name}|{last}"] = Alert(
                kind="capture_silence",
                summary=(
                    f"capture stream {name} silent for {_age(last, now_ms)} (last message "
                    f"{_iso(last) if stream.get('last_message_ms') else 'never'}; {state}, "
                    f"{stream.get('connects', 0)} connects)"
                ),
                details={"stream": name, **stream},
            )
    return found


@dg.sensor(
    name="capture_silence_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Alerts once per silence when a capture stream (Hyperliquid, Binance liquidations) "
        "has received nothing for 15 minutes, or when the capture has not written its status "
        "for 15 minutes; a log line and a JSON POST to MKT_ALERT_WEBHOOK_URL when set."
    ),
)
def capture_silence_sensor(
    context: dg.SensorEvaluationContext, alert_webhook: AlertWebhook
) -> dg.SensorResult:
    from mkt_platform.capture.service import status_path

    path = status_path()
    if not path.exists():
        return dg.SensorResult(skip_reason=f"no capture status at {path}: no capture runs here")
    now_ms = int(settings.utcnow().timestamp() * 1000)
    found = silences(json.loads(path.read_text()), now_ms)
    reported = set(json.loads(context.cursor)) if context.cursor else set()
    new = [signature for signature in found if signature not in reported]
    budget = AlertBudget(TICK_BUDGET_SECONDS)
    for signature in new:
        alert_webhook.send(found[signature], context.log, budget=budget)
    return dg.SensorResult(
        # only the silences still going on: one that ended and comes back is alerted again
        cursor=json.dumps(sorted(found)),
        skip_reason=None if new else "no new silence",
    )
