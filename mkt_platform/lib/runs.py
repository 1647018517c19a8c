"""Runs whose process died: found, failed and their pool slots freed, without a person.

A run killed with ``kill -9`` (or by a full disk, or with the code server that launched it)
never writes its end: it stays STARTED in the instance and keeps its pool slots, so every later
warehouse run waits forever. Every run of this platform executes its steps in one process,
and Dagster records that process as the run's ``Executing steps in process (pid: N)`` engine
event. :func:`reap_orphaned_runs` fails each unfinished run whose process is gone and frees its
slots; the CLI calls it before it starts, and ``orphaned_run_sensor`` every 30 seconds in the
deployment (the sensor runs in the code server, beside the run processes it launched).

A pid is only meaningful on the machine that ran it: runs carry the tag ``mkt/host`` (the
CLI's runs) or are judged by the code server's host; a run tagged with another host is left
to that host.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
from dagster._core.events import DagsterEventType
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter

#: Run tag: the host whose processes run it (a pid means nothing elsewhere).
HOST_TAG = "mkt/host"
#: Unfinished statuses a dead process can leave behind.
UNFINISHED = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


def this_host() -> str:
    return socket.gethostname()


def run_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid of the process executing the run's steps (its latest engine event that
    names one), or ``None`` when the run has not reached execution."""
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ENGINE_EVENT, ascending=False, limit=50
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        data = getattr(event, "engine_event_data", None) if event else None
        pid = data.metadata.get("pid") if data is not None and data.metadata else None
        if pid is not None:
            value = getattr(pid, "value", pid)
            if str(value).isdigit():
                return int(value)
    return None


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process of this machine (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        # Gone since kill(0) (reaped, or exited while its stat was read: ESRCH), unless this
        # machine has no /proc at all.
        return not os.path.isdir("/proc/self")
    except OSError:
        return True  # /proc unreadable: trust kill(0)


@dataclass(frozen=True)
class OrphanedRun:
    run_id: str
    job_name: str
    pid: int
    status: str
    freed_slots: bool


def reap_orphaned_runs(
    instance: dg.DagsterInstance, *, untagged: bool, host: str | None = None
) -> list[OrphanedRun]:
    """Fail every unfinished run of this host whose process is gone, and free its pool slots.

    Args:
        instance: the Dagster instance.
        untagged: whether runs without a ``mkt/host`` tag are judged here too. True in the
            code server (``orphaned_run_sensor``): the default run launcher runs them beside
            it. False in the CLI, which may share an instance with processes it cannot see
            (a deployment's containers), so it judges only runs tagged with its own host.
        host: the host whose runs may be judged (default this one). Runs tagged with another
            ``mkt/host`` are always left alone.

    Returns:
        The runs failed (with the pid found dead).
    """
    host = host or this_host()
    reaped = []
    for record in instance.get_run_records(RunsFilter(statuses=UNFINISHED)):
        run = record.dagster_run
        if run.tags.get(HOST_TAG, host if untagged else None) != host:
            continue
        pid = run_pid(instance, run.run_id)
        if pid is None or process_alive(pid):
            continue
        _tag_will_retry_first(instance, run)
        instance.report_run_failed(
            run,
            f"The process of this run (pid {pid} on {host}) is gone: killed, or out of memory "
            "or disk. Marked failed, and its pool slots freed, by mkt_platform's orphaned-run "
            "check.",
        )
        storage = instance.event_log_storage
        freed = False
        if storage.supports_global_concurrency_limits:
            freed = bool(storage.get_concurrency_run_ids() & {run.run_id})
            storage.free_concurrency_slots_for_run(run.run_id)
        reaped.append(OrphanedRun(run.run_id, run.job_name, pid, run.status.value, freed))
    return reaped


def _tag_will_retry_first(instance: dg.DagsterInstance, run: dg.DagsterRun) -> None:
    """Tag the run ``dagster/will_retry`` before its failure is written, not after.

    Dagster stores a run's failure event, then its FAILURE status, then this tag. The daemon
    that launches retries reads new failure events; one that reads in between sees a run
    neither failed nor tagged, decides not to retry it, and moves its cursor past the event
    for good: the run is never retried and its backfill waits forever (seen once in the
    deployment test). With the tag already there, the daemon retries whatever the status it
    reads. The decision is Dagster's own (max retries, the run group), made as if failed.
    """
    from dagster._core.execution.retries import auto_reexecution_should_retry_run
    from dagster._core.storage.tags import WILL_RETRY_TAG

    if not instance.run_retries_enabled:
        return
    failed = run.with_status(DagsterRunStatus.FAILURE)
    will_retry = auto_reexecution_should_retry_run(instance, failed, None)
    instance.add_run_tags(run.run_id, {WILL_RETRY_TAG: str(bool(will_retry)).lower()})


class PoolWaitTimeout(TimeoutError):
    """A pool stayed full of live runs for longer than the wait allowed."""


def pool_holders(instance: dg.DagsterInstance, pool: str) -> list[tuple[str, int | None]]:
    """The runs holding slots of ``pool`` and their pids, or ``[]`` when a slot is free."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    info = storage.get_concurrency_info(pool)
    limit = info.slot_count if info.slot_count else (info.limit or 0)
    if not limit or len(info.claimed_slots) < limit:
        return []
    return [(run_id, run_pid(instance, run_id)) for run_id in sorted(info.active_run_ids)]


def wait_for_pool(
    instance: dg.DagsterInstance,
    pool: str,
    *,
    timeout_seconds: float,
    say: Callable[[str], None],
    poll_seconds: float = 2.0,
    say_every_seconds: float = 10.0,
) -> float:
    """Wait until ``pool`` has a free slot, reaping runs whose process died on the way.

    Says what it waits for (the holding runs and their pids) when it starts and every
    ``say_every_seconds``. Sleeps in this process, so Ctrl-C and SIGTERM end it at once.

    Returns:
        The seconds waited.

    Raises:
        PoolWaitTimeout: the pool was still full of live runs after ``timeout_seconds``;
            the message names them and the setting.
    """
    started = time.monotonic()
    said = None
    while True:
        for orphan in reap_orphaned_runs(instance, untagged=False):
            say(
                f"run {orphan.run_id} ({orphan.job_name}) was {orphan.status} but its process "
                f"{orphan.pid} is gone: marked failed and its pool slots freed"
            )
        holders = pool_holders(instance, pool)
        waited = time.monotonic() - started
        if not holders:
            return waited
        names = ", ".join(f"run {r} (pid {p if p is not None else 'unknown'})" for r, p in holders)
        if waited >= timeout_seconds:
            raise PoolWaitTimeout(
                f"gave up after {waited:.0f}s waiting for pool {pool!r}, held by {names}. "
                "Let that run finish, or terminate it in the Dagster UI (Runs, Terminate); "
                "MKT_POOL_WAIT_SECONDS sets how long to wait"
            )
        if said is None or time.monotonic() - said >= say_every_seconds:
            said = time.monotonic()
            say(
                f"waiting for pool {pool!r} (one warehouse writer at a time), held by {names}: "
                f"{waited:.0f}s of at most {timeout_seconds:.0f}s"
            )
        # Not past the deadline: give up at the time set, not up to a poll later.
        time.sleep(max(0.05, min(poll_seconds, timeout_seconds - waited)))
