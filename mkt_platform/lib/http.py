"""The retry policy every exchange client shares (tenacity), and ``Retry-After`` parsing.

Each client raises its own "retryable" exception for an answer worth retrying (5xx, 429, a
venue's rate-limit code) with a ``retry_after`` attribute; timeouts and connection errors are
retried too. The wait is ``Retry-After`` when the exchange sent it, else exponential backoff
with jitter. Every retry is logged as a warning on the Dagster logger.
"""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg
import httpx
import tenacity


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds (``None`` when absent or not a number)."""
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def retrying(
    retryable: type[Exception],
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
        dg.get_dagster_logger().warning(
            f"attempt {state.attempt_number}/{max_attempts} failed ({error}); "
            f"retrying in {state.next_action.sleep if state.next_action else 0:.1f}s"
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
