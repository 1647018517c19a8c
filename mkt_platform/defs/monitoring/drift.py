"""Schema drift: reported once per change, through the same alert path as freshness.

Three signals, all recorded by the raw assets themselves:

* a payload that broke its contract (a field removed, renamed or re-typed): the pull failed,
  nothing was written, and the payload is in the lake's quarantine with its violation
  (:mod:`mkt_platform.lib.quarantine`);
* a field the exchange added: the pull went on, and the materialization's ``added_fields``
  metadata names it;
* a column schema that changed between two materializations (``dagster/column_schema``) of a
  raw asset or a dbt model:
  Dagster's column schema change checks flag it in the UI; a failed one is reported here too.

``schema_drift_sensor`` keeps the drift signatures it already reported in its cursor, so a
drift that repeats on every pull is alerted once, and a new one (another field, another
dataset) again.
"""

import json
from collections.abc import Sequence

import dagster as dg
from dagster._core.definitions.asset_checks.asset_checks_definition import AssetChecksDefinition
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from mkt_platform.lib import quarantine
from mkt_platform.lib.alerts import TICK_BUDGET_SECONDS, Alert, AlertBudget, AlertWebhook
from mkt_platform.lib.dbt import dbt_model_keys


def column_schema_change_checks(
    raw_keys: Sequence[dg.AssetKey],
) -> list[dg.AssetChecksDefinition]:
    """Dagster's column schema change checks over the raw assets ``raw_keys`` and every dbt
    model (they compare the ``dagster/column_schema`` of the latest two materializations: the
    written Parquet's for a raw asset, the warehouse's for a model)."""
    keys = [*raw_keys, *dbt_model_keys()]
    (checks,) = dg.build_column_schema_change_checks(assets=keys)
    # Dagster names the op after a hash of the keys ("asset_check_0c2ceca7"): give the step
    # a name a person can read in the run's steps.
    return [
        AssetChecksDefinition.create(
            keys_by_input_name=checks.keys_by_input_name,
            node_def=checks.node_def.with_replaced_properties(name="column_schema_change_checks"),
            check_specs_by_output_name=checks.check_specs_by_output_name,
            can_subset=True,
        )
    ]


def current_drift(
    instance: dg.DagsterInstance,
    raw_keys: Sequence[dg.AssetKey],
    schema_checks: Sequence[dg.AssetChecksDefinition],
) -> dict[str, Alert]:
    """Every drift visible now, by signature: quarantined payloads, fields added to the raw
    assets ``raw_keys``, and failed ``schema_checks``."""
    found: dict[str, Alert] = {}
    for item in quarantine.list_quarantined():
        v = item.violation
        if v.get("kind", "drift") != "drift":
            continue  # a malformed response (an HTML page, records out of order) is no drift
        signature = "violation|" + v["signature"]
        found[signature] = Alert(
            kind="schema_drift",
            asset_key=v.get("asset_key"),
            summary=(
                f"{v['dataset']}: field {v['field'] or '(payload)'} breaks the contract: "
                f"expected {v['expected']}, observed {v['observed']}; pull failed, nothing "
                f"written"
            ),
            details={
                "dataset": v["dataset"],
                "field": v["field"],
                "expected": v["expected"],
                "observed": v["observed"],
                "source": v["source"],
                "partitions": v.get("partitions"),
                "quarantined_payload": str(item.path),
            },
        )
    for key in raw_keys:
        records = instance.fetch_materializations(key, limit=1).records
        if not records or records[0].asset_materialization is None:
            continue
        materialization = records[0].asset_materialization
        added = materialization.metadata.get("added_fields")
        fields = sorted(added.value) if added is not None else []
        if fields:
            name = key.to_user_string()
            found[f"added|{name}|{','.join(fields)}"] = Alert(
                kind="schema_drift",
                severity="warning",
                asset_key=name,
                summary=(
                    f"{name}: the exchange added field(s) {', '.join(fields)}; the pull went "
                    "on without them"
                ),
                details={"added_fields": fields, "partition": materialization.partition},
            )
    for check in schema_checks:
        for check_key in check.check_keys:
            record = instance.event_log_storage.get_latest_asset_check_execution_by_key(
                [check_key]
            ).get(check_key)
            # While a run is in progress its check is only planned (no evaluation yet): only
            # a completed, failed execution is drift.
            if record is None or record.status != AssetCheckExecutionRecordStatus.FAILED:
                continue
            evaluation = record.evaluation
            if evaluation is not None:
                name = check_key.asset_key.to_user_string()
                text = evaluation.description or "column schema changed"
                found[f"columns|{name}|{text}"] = Alert(
                    kind="schema_drift",
                    severity="warning",
                    asset_key=name,
                    summary=f"{name}: {text}",
                    details={"check": check_key.name},
                )
    return found


def build_schema_drift_sensor(
    raw_keys: Sequence[dg.AssetKey], schema_checks: Sequence[dg.AssetChecksDefinition]
) -> dg.SensorDefinition:
    """The sensor that alerts once per drift signature (see the module docstring)."""

    @dg.sensor(
        name="schema_drift_sensor",
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Reports schema drift of the raw payloads once per change: quarantined payloads "
            "that broke their contract, fields an exchange added, and failed column schema "
            "change checks, as a log line and a JSON POST to MKT_ALERT_WEBHOOK_URL when set."
        ),
    )
    def schema_drift_sensor(
        context: dg.SensorEvaluationContext, alert_webhook: AlertWebhook
    ) -> dg.SensorResult:
        reported = set(json.loads(context.cursor)["reported"]) if context.cursor else set()
        drift = current_drift(context.instance, raw_keys, schema_checks)
        new = [signature for signature in drift if signature not in reported]
        budget = AlertBudget(TICK_BUDGET_SECONDS)
        for signature in new:
            alert_webhook.send(drift[signature], context.log, budget=budget)
        return dg.SensorResult(
            cursor=json.dumps({"reported": sorted(reported | set(drift))}),
            skip_reason=None if new else "no new schema drift",
        )

    return schema_drift_sensor
