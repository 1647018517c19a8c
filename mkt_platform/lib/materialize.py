"""Materialize the whole graph for a range of days, one single run per partitions definition.

Raw assets are partitioned by UTC day and the session marts by session (anchor hour to
anchor hour), so one range of days becomes two runs: the raw days the sessions need (found
through the partition mapping of the asset graph), then the sessions. Each run covers its
whole range at once (a partition-range run, whatever the asset's backfill policy), so the
clients fetch in few paginated requests.

A plan may be narrowed to some raw datasets (``only``): it pulls those and builds only the dbt
models downstream of them, so that a range asks each exchange for what it is meant to hold
(the demo asks each dataset only for the days the recordings hold).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Protocol, runtime_checkable

import dagster as dg
from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from dagster._core.storage.sqlalchemy_compat import db_select
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from dagster._serdes import deserialize_value

from mkt_platform.lib import runs
from mkt_platform.lib.datasets import SNAPSHOT_TAG
from mkt_platform.lib.dbt_assets import WAREHOUSE_POOL
from mkt_platform.lib.equity_calendar import trading_days_partitions_def
from mkt_platform.lib.partitions import (
    raw_daily_partitions_def,
    session_daily_partitions_def,
    session_monthly_partitions_def,
    session_weekly_partitions_def,
)


@dataclass(frozen=True)
class RangeStep:
    """One run of the plan: assets of one partitions definition over a key range."""

    label: str
    selection: dg.AssetSelection
    partition_keys: tuple[str, ...]
    #: The concurrency pool the step's assets are in (the warehouse pool for dbt steps).
    pool: str | None = None

    def describe(self, number: int, total: int) -> str:
        """``[2/5] dbt sessions: 28 partitions 2023-04-28..2023-05-25``."""
        keys = self.partition_keys
        span = keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]}"
        return f"[{number}/{total}] {self.label}: {_count(len(keys), 'partition')} {span}"


@dataclass(frozen=True)
class StepResult:
    """How one step of the plan ended.

    Attributes:
        run_id: its run (empty when the step was skipped).
        success: every selected asset was materialized (a skipped step is not a success).
        failed: the assets of the step that failed (raw pulls of one venue, say), with the
            first line of each failure.
        skipped: the assets left out because an upstream asset failed.
        warnings: the warnings and errors the step's code logged, one line per step (op) and
            message with its partitions as ranges (see :func:`grouped_warnings`).
    """

    step: RangeStep
    run_id: str
    success: bool
    seconds: float
    failed: dict[str, str] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def outcome(self) -> str:
        """``done in 12.3 s (run 3bd56650)``, ``FAILED in ...`` or ``skipped``."""
        if not self.run_id:
            return "skipped: an upstream asset failed"
        word = "done" if not self.failed else "FAILED"
        return f"{word} in {self.seconds:.1f} s (run {self.run_id[:8]})"


class RangeError(ValueError):
    """The requested range has no partition (before the first one, or not yet ended)."""


class DatasetError(ValueError):
    """A dataset asked for is not a raw dataset the plan can pull for a range."""


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _raw_assets(
    graph: BaseAssetGraph, partitions_def: dg.PartitionsDefinition | None = None
) -> set[dg.AssetKey]:
    """Raw assets that can be pulled for a range: materializable, partitioned by
    ``partitions_def`` (default: the UTC days; the equity datasets are partitioned by NYSE
    trading day), not dbt, not a snapshot of the present (tag ``mkt/snapshot``)."""
    days = partitions_def if partitions_def is not None else raw_daily_partitions_def()
    return {
        k
        for k in graph.get_all_asset_keys()
        if graph.get(k).is_materializable
        and "dbt" not in graph.get(k).kinds
        and graph.get(k).partitions_def == days
        and graph.get(k).tags.get(SNAPSHOT_TAG) != "true"
    }


#: dbt meta (and Dagster metadata) of a model that joins marts of several datasets: the marts
#: it reads only if they exist (see :func:`plan`).
OPTIONAL_READS = "optional_reads"


def plan(
    defs: dg.Definitions, start: date, end: date, only: Collection[str] | None = None
) -> list[RangeStep]:
    """The runs that materialize every venue's raw days and every mart for ``start..end``.

    Raw assets cover the UTC days ``start..end`` plus the days the sessions starting on those
    days reach into (found through the graph's own partition mapping: a session from 08:00 to
    08:00 needs two UTC days). Then one run per dbt partitions definition: the session marts
    for the sessions starting on ``start..end``, the UTC-daily marts (options, funding) for the
    UTC days. Snapshot assets (tag ``mkt/snapshot``) are left out: they cannot be back-filled.

    The equity datasets (Polygon, partitioned by NYSE trading day; they need an API key) are
    planned only when named in ``only``: their trading days in ``start..end`` are pulled in one
    run ("equity pulls"), then the equity marts built for them ("dbt equity").

    With ``only`` (raw asset keys, e.g. ``binance_klines_1h``), only those raw datasets are
    pulled and only the dbt models downstream of them are built, with the models these read
    (the other venues' candles in ``int_candles_1h``, say); a dataset no session mart
    reads is pulled for ``start..end`` alone. A model with dbt meta ``optional_reads`` (it
    joins marts of several datasets) is built only when every mart it reads, but those it
    lists there, is built by the plan too.

    Raises:
        RangeError: no session in the range exists yet (or ``end`` is before ``start``).
        DatasetError: a name in ``only`` is not a raw dataset of ``defs``.
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
    raw_assets = _raw_assets(graph)
    trading_days = trading_days_partitions_def()
    equity_assets: set[dg.AssetKey] = set()
    if only is not None:
        names = {k.to_user_string(): k for k in raw_assets | _raw_assets(graph, trading_days)}
        unknown = sorted(set(only) - set(names))
        if unknown or not only:
            raise DatasetError(
                f"not a raw dataset: {', '.join(unknown) or '(none given)'}; "
                f"the raw datasets are {', '.join(sorted(names))}"
            )
        chosen = {names[name] for name in only}
        equity_assets = {k for k in chosen if graph.get(k).partitions_def == trading_days}
        raw_assets = chosen - equity_assets
        downstream = dbt_keys & dg.AssetSelection.assets(*chosen).downstream().resolve(graph)
        # A model that joins marts of several datasets (dbt meta OPTIONAL_READS, e.g. the
        # volatility risk premium over DVOL and realized volatility) is built only when the
        # plan builds every mart it needs; the marts it lists as optional it reads if they
        # exist. So pulling one dataset never builds another dataset's marts for it.
        joined = {k for k in downstream if OPTIONAL_READS in graph.get(k).metadata}
        for key in joined:
            optional = set(graph.get(key).metadata[OPTIONAL_READS])
            needed = {
                parent
                for parent in graph.get(key).parent_keys
                if parent in dbt_keys
                and graph.get(parent).group_name == "marts"
                and parent.to_user_string() not in optional
            }
            if not needed <= downstream:
                downstream.discard(key)
        # ... and the models these read from other venues (int_candles_1h reads every venue's
        # candles; a venue with no lake file yet reads as an empty relation).
        dbt_keys &= dg.AssetSelection.assets(*(downstream - joined)).upstream().resolve(graph) | (
            downstream & joined
        )
    raw_def = raw_daily_partitions_def()
    day_keys = tuple(k for k in raw_def.get_partition_keys() if k in wanted)
    raw_keys: set[str] = set(day_keys)
    families = {
        "session": sessions_def,
        "weekly": session_weekly_partitions_def(),
        "monthly": session_monthly_partitions_def(),
        "equity": trading_days,
    }
    by_def: dict[str, set[dg.AssetKey]] = {}
    for key in dbt_keys:
        partitions_def = graph.get(key).partitions_def
        family = next((f for f, d in families.items() if d == partitions_def), None)
        if family is None and partitions_def == raw_def:
            family = "utc"
        if family is not None:
            by_def.setdefault(family, set()).add(key)
    # The raw days the sessions need are the parents, through the graph's partition mapping.
    for raw in raw_assets:
        for child in graph.get(raw).child_keys & by_def.get("session", set()):
            raw_keys |= _parent_partition_keys(graph, child, raw, session_keys)
    steps = []
    if raw_assets:
        steps.append(
            RangeStep("raw pulls", dg.AssetSelection.assets(*raw_assets), tuple(sorted(raw_keys)))
        )
    trading_keys = tuple(k for k in trading_days.get_partition_keys() if k in wanted)
    if equity_assets and trading_keys:
        steps.append(
            RangeStep("equity pulls", dg.AssetSelection.assets(*equity_assets), trading_keys)
        )
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
    if equity_assets and by_def.get("equity") and trading_keys:
        steps.append(
            RangeStep(
                "dbt equity",
                dg.AssetSelection.assets(*by_def["equity"]),
                trading_keys,
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


@runtime_checkable
class Progress(Protocol):
    """What :func:`run_plan` tells while it runs."""

    def step_started(self, number: int, total: int, step: RangeStep) -> None: ...

    def step_ended(self, result: StepResult) -> None: ...

    def note(self, line: str) -> None: ...


class PlanProgress:
    """What :func:`run_plan` says while it runs, a line at a time through ``say``: each step
    when it starts and when it ends, and notes (a pool wait, what was skipped, the step's
    grouped warnings). The CLI draws each step on one line instead."""

    def __init__(self, say: Callable[[str], None] = print) -> None:
        self.say = say

    def step_started(self, number: int, total: int, step: RangeStep) -> None:
        self.say(step.describe(number, total))

    def step_ended(self, result: StepResult) -> None:
        self.say(f"    {result.outcome()}")

    def note(self, line: str) -> None:
        self.say(f"    {line}")


def run_plan(
    defs: dg.Definitions,
    steps: list[RangeStep],
    instance: dg.DagsterInstance,
    progress: Callable[[str], None] | Progress = print,
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

    ``progress`` is told each step's start and end and the warnings its code logged, grouped
    (:func:`grouped_warnings`); a plain callable gets a line per event. ``log_level`` is the
    level of Dagster's console logger (its records go to stderr as they happen).

    Raises:
        runs.PoolWaitTimeout: a pool stayed full of live runs for ``pool_wait_seconds``.
    """
    if not isinstance(progress, Progress):
        progress = PlanProgress(progress)
    assets = list(defs.assets or [])
    graph = defs.resolve_asset_graph()
    results: list[StepResult] = []
    failed_assets: set[dg.AssetKey] = set()
    for number, step in enumerate(steps, start=1):
        keys = step.partition_keys
        selection = step.selection
        selected = selection.resolve(graph)
        if failed_assets:
            blocked = dg.AssetSelection.assets(*failed_assets).downstream().resolve(graph)
            skipped = tuple(sorted(k.to_user_string() for k in selected & blocked))
            selected = selected - blocked
            if not selected:
                result = StepResult(step, "", False, 0.0, skipped=skipped)
                progress.step_started(number, len(steps), step)
                progress.step_ended(result)
                results.append(result)
                continue
            if skipped:
                progress.note(f"skipping {', '.join(skipped)}: an upstream asset failed")
            selection = dg.AssetSelection.assets(*selected)
        else:
            skipped = ()
        if step.pool is not None:
            runs.wait_for_pool(
                instance, step.pool, timeout_seconds=pool_wait_seconds, say=progress.note
            )
        progress.step_started(number, len(steps), step)
        started = time.perf_counter()
        run = dg.materialize(
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
        failed = {} if run.success else _failures(run, selected)
        if not run.success:
            # The failures name assets where they can; a run that failed with every asset
            # written (a dbt data test refused what its model had just built) names its step
            # instead, and then nothing downstream of the step runs on what it wrote.
            named = {key for key in selected if key.to_user_string() in failed}
            failed_assets |= named or selected
        result = StepResult(
            step,
            run.run_id,
            run.success and not skipped,
            seconds,
            failed,
            skipped,
            tuple(grouped_warnings(log_messages(instance, run.run_id), keys)),
        )
        results.append(result)
        progress.step_ended(result)
        for line in result.warnings:
            progress.note(line)
        for name, why in failed.items():
            progress.note(f"failed: {name}: {why}")
    return results


def log_messages(instance: dg.DagsterInstance, run_id: str) -> list[EventLogEntry]:
    """The messages a run's code logged (``context.log``), in order, without its Dagster
    events: from an SQL event log (SQLite, PostgreSQL), only the rows that hold no Dagster
    event are read. ``instance.all_logs`` reads and deserializes every event of the run, the
    materializations too (a 181-partition dbt step has about 3,000 of 5-10 KB each: 3.2 s of a
    6-month backfill went there)."""
    storage = instance.event_log_storage
    if not isinstance(storage, SqlEventLogStorage):
        return [e for e in instance.all_logs(run_id) if not e.is_dagster_event]
    table = SqlEventLogStorageTable
    query = (
        db_select([table.c.event])
        .where(table.c.run_id == run_id, table.c.dagster_event_type.is_(None))
        .order_by(table.c.id.asc())
    )
    with storage.run_connection(run_id) as conn:
        rows = conn.execute(query).fetchall()
    return [deserialize_value(row[0], EventLogEntry) for row in rows]


#: A partition key (a UTC day, or the day a session starts) inside a logged message.
_DAY = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


def grouped_warnings(entries: Iterable[EventLogEntry], partition_keys: Sequence[str]) -> list[str]:
    """The warnings and errors a run's code logged, one line per step (op) and message.

    A raw asset logs a warning per partition (``2023-05-02: 0 of 4320 candles; missing
    {...}``): messages that differ only in the partition key are one line, their partitions
    collapsed into ranges of consecutive keys of ``partition_keys``, e.g.
    ``warning: binance_klines_1m 2023-05-02..2023-05-26 (25 partitions): 0 of 4320 candles;
    missing {...}``. Other messages are one line each, with a count when repeated. Dagster's
    own events (a step failure, say) are left out: the plan reports those itself. Lines keep
    the order of each message's first record.
    """
    order = {key: i for i, key in enumerate(partition_keys)}
    groups: dict[tuple[str, str, str], list[str | None]] = {}
    for entry in entries:
        if entry.is_dagster_event or entry.level < logging.WARNING:
            continue
        lines = (entry.user_message or "").strip().splitlines()
        text = lines[0] if lines else ""
        day = next((m for m in _DAY.finditer(text) if m.group() in order), None)
        template = text if day is None else f"{text[: day.start()]}{{}}{text[day.end() :]}"
        level = "error" if entry.level >= logging.ERROR else "warning"
        key = (level, entry.step_key or "run", template)
        groups.setdefault(key, []).append(None if day is None else day.group())
    result = []
    for (level, step, template), days in groups.items():
        if days[0] is None:
            times = f" ({len(days)} times)" if len(days) > 1 else ""
            result.append(f"{level}: {step}: {template}{times}")
            continue
        keys = sorted(set(days), key=order.__getitem__)  # type: ignore[arg-type]
        ranges: list[list[str]] = []
        for k in keys:
            if ranges and order[k] == order[ranges[-1][-1]] + 1:
                ranges[-1].append(k)
            else:
                ranges.append([k])
        where = ", ".join(r[0] if len(r) == 1 else f"{r[0]}..{r[-1]}" for r in ranges)
        if len(keys) > 1:
            where += f" ({_count(len(keys), 'partition')})"
        if template.startswith("{}"):
            message = template[2:].lstrip(":").strip()
        else:
            message = template.replace("{}", "<partition>")
        result.append(f"{level}: {step} {where}: {message}")
    return result


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
