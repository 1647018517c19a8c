"""Freshness of every raw asset and daily/weekly/monthly mart, as asset checks, with alerts.

Two rules per raw asset (tolerance and interval as each raw dataset declares them, see
:class:`mkt_platform.lib.datasets.Freshness`; marts get 2 hours after their window closed):

* **partition**: the latest closed partition (whose window ended at least the tolerance ago)
  was materialized after its window closed. The lag is from the window's end to that
  materialization, or to now when it has not happened.
* **data** (raw assets): the newest candle, funding record or trade in the latest partitions
  ended no longer ago than its interval plus the tolerance (a candle's end is its open plus
  the interval; a trade or funding record counts as one hour): a pull that ran but brought
  nothing new is stale too. ``data_lag_seconds`` is now minus that end.

Dagster's ``FreshnessPolicy`` is not partition-aware, so these are asset checks named
``freshness``. ``freshness_sensor`` evaluates them every 5 minutes and records the results
as check evaluations (with the measured lags in their metadata), and raises an alert
(:mod:`mkt_platform.lib.alerts`: a log line, and a JSON POST to ``MKT_ALERT_WEBHOOK_URL``
when set) when an asset turns stale, once until it is fresh again. The same checks can be
executed from the UI. On a lake that holds only history (after ``make demo`` or a replay),
the summary says so plainly, with the age of the newest partition.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import dagster as dg

from mkt_platform import settings
from mkt_platform.lib.alerts import TICK_BUDGET_SECONDS, Alert, AlertBudget, AlertWebhook
from mkt_platform.lib.datasets import RawDataset, latest_materialization

CHECK_NAME = "freshness"
MART_TOLERANCE = timedelta(hours=2)
#: Data whose newest partition ended this long ago is called historical in the summary.
HISTORICAL_AGE = timedelta(days=7)
#: The marts judged on their partitions (built after their window closed, within 2 hours).
MARTS = (
    "session_ohlc_daily",
    "session_ohlc_weekly",
    "session_ohlc_monthly",
    "option_ohlc_hourly",
    "funding_rates_daily",
)


@dataclass(frozen=True)
class FreshnessRule:
    """The freshness rule of one asset.

    Attributes:
        key: the asset.
        tolerance: how late the latest closed partition (and the newest record) may be.
        interval: the data's own interval (a candle's length; one hour for trades and
            funding); ``None`` for marts, which are judged on their partitions only.
        newest_field: the materialization metadata entry holding the newest record's time.
    """

    key: dg.AssetKey
    tolerance: timedelta
    interval: timedelta | None = None
    newest_field: str | None = None


def freshness_rules(datasets: Sequence[RawDataset]) -> tuple[FreshnessRule, ...]:
    """The rule of every raw dataset that declares freshness, then of every mart."""
    return (
        *(
            FreshnessRule(
                d.key, d.freshness.tolerance, d.freshness.interval, d.freshness.newest_field
            )
            for d in datasets
            if d.freshness is not None
        ),
        *(FreshnessRule(dg.AssetKey(name), MART_TOLERANCE) for name in MARTS),
    )


@dataclass(frozen=True)
class Freshness:
    """The outcome of one rule: passed, a one-line summary, and metadata (lags in seconds)."""

    key: dg.AssetKey
    passed: bool
    summary: str
    metadata: dict[str, Any]

    def evaluation(self) -> dg.AssetCheckEvaluation:
        """The outcome as a check evaluation (what the sensor records)."""
        return dg.AssetCheckEvaluation(**self._fields())

    def result(self) -> dg.AssetCheckResult:
        """The outcome as a check result (what the check yields when executed)."""
        return dg.AssetCheckResult(**self._fields())

    def _fields(self) -> dict[str, Any]:
        return {
            "asset_key": self.key,
            "check_name": CHECK_NAME,
            "passed": self.passed,
            "severity": dg.AssetCheckSeverity.ERROR,
            "description": self.summary,
            "metadata": self.metadata,
        }


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes >= 60 * 48:
        return f"{minutes // 1440}d{(minutes % 1440) // 60:02d}h"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def evaluate(
    instance: dg.DagsterInstance,
    rule: FreshnessRule,
    partitions_def: dg.TimeWindowPartitionsDefinition,
    now: datetime,
) -> Freshness:
    """Judge one asset at ``now`` (see the module docstring for the two rules)."""
    name = rule.key.to_user_string()
    due = now - rule.tolerance
    current = partitions_def.time_window_for_partition_key(
        partitions_def.get_partition_key_for_timestamp(due.timestamp())
    )
    window = partitions_def.get_prev_partition_window(current.start)
    metadata: dict[str, Any] = {"tolerance_seconds": rule.tolerance.total_seconds()}
    problems = []
    if window is not None:
        partition = partitions_def.get_partition_key_for_timestamp(window.start.timestamp())
        record = latest_materialization(instance, rule.key, partition)
        closed_at = None
        if record is not None and record.asset_materialization is not None:
            # Raw assets record whether the pull saw the window closed; marts were built
            # after it closed if their materialization is later than the window's end.
            flag = record.asset_materialization.metadata.get("window_closed")
            if flag.value if flag is not None else record.timestamp >= window.end.timestamp():
                closed_at = max(record.timestamp, window.end.timestamp())
        lag = (closed_at if closed_at is not None else now.timestamp()) - window.end.timestamp()
        metadata.update(
            {
                "latest_closed_partition": partition,
                "window_end": dg.MetadataValue.timestamp(window.end),
                "partition_lag_seconds": round(lag, 1),
                "partition_materialized_after_close": closed_at is not None,
            }
        )
        if closed_at is None:
            problems.append(
                f"latest closed partition {partition} not materialized after its window "
                f"closed: {_duration(lag)} late "
                f"(tolerance {_duration(rule.tolerance.total_seconds())})"
            )
    if rule.newest_field is not None and rule.interval is not None:
        newest = None
        today = partitions_def.get_partition_key_for_timestamp(now.timestamp())
        for partition in (today, *([metadata["latest_closed_partition"]] if window else [])):
            record = latest_materialization(instance, rule.key, partition)
            value = (
                record.asset_materialization.metadata.get(rule.newest_field)
                if record is not None and record.asset_materialization is not None
                else None
            )
            if value is not None:
                newest = max(newest or value.value, value.value)
        if newest is None:
            problems.append("no record in the latest partitions")
        else:
            data_lag = now.timestamp() - (newest + rule.interval.total_seconds())
            metadata["newest_record"] = dg.MetadataValue.timestamp(newest)
            metadata["data_lag_seconds"] = round(data_lag, 1)
            allowed = (rule.interval + rule.tolerance).total_seconds()
            if data_lag > allowed:
                problems.append(
                    f"newest record ended {_duration(data_lag)} ago "
                    f"(allowed: interval + tolerance = {_duration(allowed)})"
                )
    passed = not problems
    summary = f"{name}: " + ("fresh" if passed else "; ".join(problems))
    history = None if passed else _historical(instance, rule, partitions_def, now)
    if history is not None:
        metadata["historical_data"] = True
        summary = f"{name}: {history}. " + "; ".join(problems)
    return Freshness(rule.key, passed, summary, metadata)


def _historical(
    instance: dg.DagsterInstance,
    rule: FreshnessRule,
    partitions_def: dg.TimeWindowPartitionsDefinition,
    now: datetime,
) -> str | None:
    """A plain sentence when the asset holds only history (its newest materialized
    partition ended more than :data:`HISTORICAL_AGE` ago, as after a replay or a past
    backfill): stale, but not a broken platform. ``None`` otherwise."""
    event = instance.get_latest_materialization_event(rule.key)
    if event is None or event.dagster_event is None:
        return None
    partition = event.dagster_event.partition
    if partition is None:
        return None
    end = partitions_def.time_window_for_partition_key(partition).end
    age = now.timestamp() - end.timestamp()
    if age < HISTORICAL_AGE.total_seconds():
        return None
    return (
        f"historical data only: the newest partition pulled ({partition}) ended "
        f"{_duration(age)} ago, so this lake holds recorded history (a replay or a past "
        "backfill) and nothing live has been pulled since; turn on the refresh schedules "
        "against the live exchanges to make it fresh"
    )


def evaluate_all(
    instance: dg.DagsterInstance,
    asset_graph: Any,
    now: datetime,
    rules: Sequence[FreshnessRule],
) -> list[Freshness]:
    """Every rule whose asset is defined and partitioned, at ``now``."""
    defs = {
        rule.key: asset_graph.get(rule.key).partitions_def
        for rule in rules
        if asset_graph.has(rule.key) and asset_graph.get(rule.key).partitions_def is not None
    }
    return [evaluate(instance, rule, defs[rule.key], now) for rule in rules if rule.key in defs]


def _check_description(rule: FreshnessRule) -> str:
    return (
        f"The latest closed partition was materialized within "
        f"{_duration(rule.tolerance.total_seconds())} of its window closing"
        + (
            ", and the newest record is no older than its interval plus that"
            if rule.newest_field
            else ""
        )
        + "."
    )


def build_freshness_checks(rules: Sequence[FreshnessRule]) -> dg.AssetChecksDefinition:
    """One ``freshness`` check per rule, evaluated now when executed (as the sensor does)."""

    @dg.multi_asset_check(
        specs=[
            dg.AssetCheckSpec(CHECK_NAME, asset=rule.key, description=_check_description(rule))
            for rule in rules
        ],
        can_subset=True,
        name="freshness_checks",
    )
    def freshness_checks(context: dg.AssetCheckExecutionContext):
        """Evaluate freshness now (the same rules the sensor applies)."""
        graph = context.repository_def.asset_graph
        wanted = {key.asset_key for key in context.selected_asset_check_keys}
        for result in evaluate_all(context.instance, graph, settings.utcnow(), rules):
            if result.key in wanted:
                yield result.result()

    return freshness_checks


def build_freshness_sensor(rules: Sequence[FreshnessRule]) -> dg.SensorDefinition:
    """The sensor that records every rule's result every 5 minutes and alerts once per
    turn to stale."""

    @dg.sensor(
        name="freshness_sensor",
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Every 5 minutes, evaluates the freshness of every raw asset and mart and records "
            "it as their 'freshness' check; when one turns stale it raises an alert (a log "
            "line, and a JSON POST to MKT_ALERT_WEBHOOK_URL when set), once until it is fresh "
            "again."
        ),
    )
    def freshness_sensor(
        context: dg.SensorEvaluationContext, alert_webhook: AlertWebhook
    ) -> dg.SensorResult:
        now = settings.utcnow()
        results = evaluate_all(context.instance, context.repository_def.asset_graph, now, rules)
        stale_before = set(json.loads(context.cursor)["stale"]) if context.cursor else set()
        stale_now = set()
        budget = AlertBudget(TICK_BUDGET_SECONDS)
        for result in results:
            name = result.key.to_user_string()
            if result.passed:
                if name in stale_before:
                    context.log.info(f"freshness recovered: {result.summary}")
                continue
            stale_now.add(name)
            if name not in stale_before:
                alert_webhook.send(
                    Alert(
                        kind="freshness",
                        summary=result.summary,
                        asset_key=name,
                        details={
                            k: (v.value if isinstance(v, dg.MetadataValue) else v)
                            for k, v in result.metadata.items()
                        },
                    ),
                    context.log,
                    budget=budget,
                )
        return dg.SensorResult(
            asset_events=[result.evaluation() for result in results],
            cursor=json.dumps({"stale": sorted(stale_now)}),
        )

    return freshness_sensor
