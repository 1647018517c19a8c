"""The orphaned-run sensor: runs whose process died are failed within a minute.

With the default run launcher each run executes in a process the code server starts, and
Dagster's run monitoring cannot see whether that process is alive: a run killed with its code
server, by ``kill -9`` or by the kernel stays STARTED and holds its run slot and its pool slot
until the 6-hour max runtime. This sensor, evaluated in the code server beside those
processes, fails each such run and frees its pool slots (:func:`mkt_platform.lib.runs.
reap_orphaned_runs`); ``run_retries`` then launches it again.
"""

from __future__ import annotations

import dagster as dg
from dagster._core.launcher import DefaultRunLauncher

from mkt_platform.lib.runs import reap_orphaned_runs


@dg.sensor(
    name="orphaned_run_sensor",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Every 30 seconds: fails each unfinished run whose process is gone (killed, or lost "
        "with its code server) and frees its pool slots, so run_retries launches it again and "
        "no slot is held by a dead run."
    ),
)
def orphaned_run_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    if not isinstance(context.instance.run_launcher, DefaultRunLauncher):
        # Other launchers run elsewhere (a pod); Dagster's run monitoring watches those.
        return dg.SkipReason("runs are not launched on this host")
    reaped = reap_orphaned_runs(context.instance, untagged=True)
    for orphan in reaped:
        context.log.warning(
            f"run {orphan.run_id} ({orphan.job_name}) was {orphan.status} but its process "
            f"{orphan.pid} is gone: marked failed"
            + (", its pool slots freed" if orphan.freed_slots else "")
        )
    return dg.SkipReason(
        f"failed {len(reaped)} orphaned run(s)" if reaped else "every unfinished run is alive"
    )
