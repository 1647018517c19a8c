"""Materialize the whole graph for a range of days, one single run per partitions definition.

Raw assets are partitioned by UTC day and the session marts by session (anchor hour to
anchor hour), so one range of days becomes two runs: the raw days the sessions need (found
through the partition mapping of the asset graph), then the sessions. Each run covers its
whole range at once (a partition-range run, whatever the asset's backfill policy), so the
clients fetch in few paginated requests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import dagster as dg
from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from mkt_platform.lib import runs
from mkt_platform.lib.dbt_assets import WAREHOUSE_POOL
from mkt_platform.lib.partitions import (
    raw_daily_partitions_def,
    session_daily_partitions_def,
    session_monthly_partitions_def,
    session_weekly_partitions_def,
)

#: Asset tag of raw assets that snapshot the present and can never be back-filled.
SNAPSHOT_TAG = "mkt/snapshot"


@dataclass(frozen=True)
class RangeStep:
    """One run of the plan: assets of one partitions definition over a key range."""

    label: str
    selection: dg.AssetSelection
    partition_keys: tuple[str, ...]
    #: The concurrency pool the step's assets are in (the warehouse pool for dbt steps).
    pool: str | None = None


@dataclass(frozen=True)
class StepResult:
    """How one step of the plan ended.

    Attributes:
        run_id: its run (empty when the step was skipped).
        success: every selected asset was materialized (a skipped step is not a success).
        failed: the assets of the step that failed (raw pulls of one venue, say), with the
            first line of each failure.
        skipped: the assets left out because an upstream asset failed.
    """

    step: RangeStep
    run_id: str
    success: bool
    seconds: float
    failed: dict[str, str] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()


class RangeError(ValueError):
    """The requested range has no partition (before the first one, or not yet ended)."""


def plan(defs: dg.Definitions, start: date, end: date) -> list[RangeStep]:
    """The runs that materialize every venue's raw days and every mart for ``start..end``.

    Raw assets cover the UTC days ``start..end`` plus the days the sessions starting on those
    days reach into (found through the graph's own partition mapping: a session from 08:00 to
    08:00 needs two UTC days). Then one run per dbt partitions definition: the session marts
    for the sessions starting on ``start..end``, the UTC-daily marts (options, funding) for the
    UTC days. Snapshot assets (tag ``mkt/snapshot``) are left out: they cannot be back-filled.

    Raises:
        RangeError: no session in the range exists yet (or ``end`` is before ``start``).
    """
    sessions_def = session_daily_partitions_def()
    wanted = {(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)}
    session_keys = tuple(k for k in sessions_def.get_partition_keys() if k in wanted)
    if not session_keys:
        raise RangeError(
            f"no ended session starts between {start} and {end} "
            f"(sessions start at {sessions_def.get_first_partition_key()} and end daily at "
            f"{sessions_def.hour_offset:02d}:00 UTC)"
        )
    graph = defs.resolve_asset_graph()
    keys = {k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}
    dbt_keys = {k for k in keys if "dbt" in graph.get(k).kinds}
    raw_assets = {
        k
        for k in keys - dbt_keys
        if graph.get(k).partitions_def is not None and graph.get(k).tags.get(SNAPSHOT_TAG) != "true"
    }
    raw_def = raw_daily_partitions_def()
    day_keys = tuple(k for k in raw_def.get_partition_keys() if k in wanted)
    raw_keys: set[str] = set(day_keys)
    families = {
        "session": sessions_def,
        "weekly": session_weekly_partitions_def(),
        "monthly": session_monthly_partitions_def(),
    }
    by_def: dict[str, set[dg.AssetKey]] = {}
    for key in dbt_keys:
        partitions_def = graph.get(key).partitions_def
        family = next((f for f, d in families.items() if d == partitions_def), "utc")
        by_def.setdefault(family, set()).add(key)
    # The raw days the sessions need are the parents, through the graph's partition mapping.
    for raw in raw_assets:
        for child in graph.get(raw).child_keys & by_def.get("session", set()):
            raw_keys |= _parent_partition_keys(graph, child, raw, session_keys)
    steps = [RangeStep("raw pulls", dg.AssetSelection.assets(*raw_assets), tuple(sorted(raw_keys)))]
    if by_def.get("session"):
        steps.append(
            RangeStep(
                "dbt sessions",
                dg.AssetSelection.assets(*by_def["session"]),
                session_keys,
                WAREHOUSE_POOL,
            )
        )
    # Weekly and monthly sessions that lie wholly within the daily sessions of the range.
    first = sessions_def.time_window_for_partition_key(session_keys[0]).start
    last = sessions_def.time_window_for_partition_key(session_keys[-1]).end
    for family, label in (("weekly", "dbt weekly sessions"), ("monthly", "dbt monthly sessions")):
        partitions_def = families[family]
        keys = tuple(
            k
            for k in partitions_def.get_partition_keys()
            if first <= partitions_def.time_window_for_partition_key(k).start
            and partitions_def.time_window_for_partition_key(k).end <= last
        )
        if by_def.get(family) and keys:
            steps.append(
                RangeStep(label, dg.AssetSelection.assets(*by_def[family]), keys, WAREHOUSE_POOL)
            )
    if by_def.get("utc") and day_keys:
        steps.append(
            RangeStep(
                "dbt options and funding",
                dg.AssetSelection.assets(*by_def["utc"]),
                day_keys,
                WAREHOUSE_POOL,
            )
        )
    return steps


def _parent_partition_keys(
    graph: BaseAssetGraph, child: dg.AssetKey, parent: dg.AssetKey, child_keys: tuple[str, ...]
) -> set[str]:
    child_def = graph.get(child).partitions_def
    parent_def = graph.get(parent).partitions_def
    mapping = graph.get_partition_mapping(child, parent)
    result = mapping.get_upstream_mapped_partitions_result_for_partitions(
        child_def.subset_with_partition_keys(child_keys), child_def, parent_def
    )
    return set(result.partitions_subset.get_partition_keys())


def run_plan(
    defs: dg.Definitions,
    steps: list[RangeStep],
    instance: dg.DagsterInstance,
    progress: Callable[[str], None] = print,
    log_level: str = "WARNING",
    pool_wait_seconds: float = 900,
) -> list[StepResult]:
    """Run each step in order as one in-process run on ``instance``.

    An asset that fails does not stop the others: the later steps leave out only what is
    downstream of it (one venue's bad trade stops that venue's marts, not every mart), and
    each result lists what failed and what was skipped.

    Runs are tagged with this host (``mkt/host``), so a later start can tell whether their
    process is gone. Before a step in a pool, waits (saying so) until the pool has a slot,
    failing the runs that hold it if their process died (:func:`runs.wait_for_pool`).

    Raises:
        runs.PoolWaitTimeout: a pool stayed full of live runs for ``pool_wait_seconds``.
    """
    assets = list(defs.assets or [])
    graph = defs.resolve_asset_graph()
    results: list[StepResult] = []
    failed_assets: set[dg.AssetKey] = set()
    for number, step in enumerate(steps, start=1):
        keys = step.partition_keys
        progress(
            f"[{number}/{len(steps)}] {step.label}: {len(keys)} partition(s) {keys[0]}..{keys[-1]}"
        )
        selection = step.selection
        selected = selection.resolve(graph)
        if failed_assets:
            blocked = dg.AssetSelection.assets(*failed_assets).downstream().resolve(graph)
            skipped = tuple(sorted(k.to_user_string() for k in selected & blocked))
            selected = selected - blocked
            if skipped:
                progress(f"    skipping {', '.join(skipped)}: an upstream asset failed")
            if not selected:
                results.append(StepResult(step, "", False, 0.0, skipped=skipped))
                continue
            selection = dg.AssetSelection.assets(*selected)
        else:
            skipped = ()
        if step.pool is not None:
            runs.wait_for_pool(
                instance,
                step.pool,
                timeout_seconds=pool_wait_seconds,
                say=lambda line: progress(f"    {line}"),
            )
        started = time.perf_counter()
        result = dg.materialize(
            assets,
            selection=selection,
            resources=defs.resources,
            instance=instance,
            tags={
                ASSET_PARTITION_RANGE_START_TAG: keys[0],
                ASSET_PARTITION_RANGE_END_TAG: keys[-1],
                runs.HOST_TAG: runs.this_host(),
            },
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
            raise_on_error=False,
        )
        seconds = time.perf_counter() - started
        failed = {} if result.success else _failures(result, selected)
        failed_assets |= {dg.AssetKey.from_user_string(k) for k in failed}
        results.append(
            StepResult(
                step, result.run_id, result.success and not skipped, seconds, failed, skipped
            )
        )
        progress(
            f"    {'done' if result.success else 'FAILED'} in {seconds:.1f}s, run {result.run_id}"
        )
        for name, why in failed.items():
            progress(f"    failed: {name}: {why}")
    return results


def _failures(result: dg.ExecuteInProcessResult, selected: set[dg.AssetKey]) -> dict[str, str]:
    """The selected assets a failed run did not materialize, each with its step's failure."""
    done = {e.asset_key for e in result.get_asset_materialization_events()}
    reasons: dict[str, str] = {}
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        user = data.user_failure_data
        text = (user.description if user and user.description else None) or (
            data.error.message.strip() if data.error else "failed"
        )
        reasons[event.step_key] = text
    failed = {}
    for key in sorted(selected - done, key=lambda k: k.to_user_string()):
        name = key.to_user_string()
        why = next((r for step, r in reasons.items() if name in step), None)
        failed[name] = why or next(iter(reasons.values()), "not materialized")
    return failed or reasons or {"(run)": "failed"}
