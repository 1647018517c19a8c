"""The embedded instance's event log: Dagster's SQLite storage, writing a batch of events at once.

A partitioned run writes an event per asset and partition twice: "materialization planned"
when the run is created and the materialization when the step yields its output. Dagster's
SQLite event log writes each in its own two transactions (the run's database, then the
cross-run index), 12-15 ms apiece on the development machine: a 181-session dbt step spent
21 s of its 32 s there. Dagster already hands these events over in batches (one per run's
planned events, one per partitioned output) when ``DAGSTER_EVENT_BATCH_SIZE`` is set, and its
PostgreSQL storage writes a batch in one statement; its SQLite storage only loops. This
storage writes a batch in one index transaction and one run-database transaction: 1,448
events of a 181-partition, 4-asset run in 2.1 s instead of 10.4 s.

What is stored is what :class:`SqliteEventLogStorage` stores event by event (the same rows
in the run's database, the index, the asset-key table and the event tags): only the number
of transactions changes. Configured in ``mkt_platform/dagster.yaml``:

.. code-block:: yaml

    event_log_storage:
      module: mkt_platform.lib.event_storage
      class: BatchingSqliteEventLogStorage
      config:
        dagster_home: {env: DAGSTER_HOME}

and batching is switched on by :func:`mkt_platform.settings.enable_event_batches` in each
process that creates or executes runs (``mkt-platform materialize``, ``mkt-platform dev``;
the deployment sets the variable for its services).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from dagster import StringSource
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationPlanned,
)
from dagster._core.events import ASSET_EVENTS, DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import (
    AssetCheckExecutionsTable,
    SqlEventLogStorageTable,
)
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._serdes import ConfigurableClassData


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """:class:`SqliteEventLogStorage` whose :meth:`store_event_batch` writes a batch in one
    transaction per database, in Dagster's own place for it, ``<dagster_home>/history/runs``.

    Config: ``dagster_home``, the instance's folder (``{env: DAGSTER_HOME}`` in the shipped
    dagster.yaml: a dagster.yaml cannot name its own folder, and Dagster's SQLite default
    derives it from the folder the instance was loaded from, which a storage never sees).
    """

    def __init__(self, dagster_home: str, inst_data: ConfigurableClassData | None = None):
        self.dagster_home = dagster_home
        super().__init__(
            base_dir=os.path.join(dagster_home, "history", "runs"), inst_data=inst_data
        )

    @classmethod
    def config_type(cls) -> Mapping[str, Any]:
        return {"dagster_home": StringSource}

    @classmethod
    def from_config_value(  # ty: ignore[invalid-method-override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> BatchingSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Store ``events`` (Dagster batches planned events, materializations and observations)
        as :meth:`store_event` would, one by one, but in one transaction per database.

        The index (what asset queries, partition status and the UI's asset pages read) is
        written first, in one transaction: if it fails, nothing of the batch is stored and the
        error goes to Dagster, which then stores the events one at a time. The run's own log
        follows in one transaction. Each event is serialized once for both. The asset-key
        table, which keeps an asset's last event of each kind, is written with the last event
        of each (asset, kind) of the batch, in order: what writing every event would leave.

        An asset check's planned event (one per check of the run, its partitions in a subset)
        becomes a row per partition of the check executions table, each holding the event:
        Dagster's storage serializes the event again for each row (a 181-partition run of 33
        dbt tests spent 7.5 s there); here it is serialized once. Other events (run status,
        logs) take :meth:`store_event`.
        """
        batched = [event for event in events if _batched(event)]
        if batched:
            rows = [self._event_to_row(event) for event in batched]
            with self.index_transaction() as conn:
                event_ids = [
                    conn.execute(
                        SqlEventLogStorageTable.insert().values(**row)
                    ).inserted_primary_key[0]
                    for row in rows
                ]
                asset_events = []
                asset_event_ids = []
                check_rows: list[dict] = []
                last: dict[tuple[str, str], tuple[EventLogEntry, int]] = {}
                for event, event_id, row in zip(batched, event_ids, rows, strict=True):
                    if event.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
                        check_rows += _check_planned_rows(event, event_id, row["event"])
                        continue
                    asset_events.append(event)
                    asset_event_ids.append(event_id)
                    kind = (
                        event.get_dagster_event().asset_key.to_string(),
                        event.dagster_event_type,
                    )
                    last.pop(kind, None)  # re-inserted: dicts keep insertion order
                    last[kind] = (event, event_id)
                for event, event_id in last.values():
                    self._store_asset_event(conn, event, event_id)
                if asset_events:
                    self._store_asset_event_tags(conn, asset_events, asset_event_ids)
                if check_rows:  # one executemany, not a statement of every row's values
                    conn.execute(AssetCheckExecutionsTable.insert(), check_rows)
            by_run: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for event, row in zip(batched, rows, strict=True):
                by_run[event.run_id].append(row)
            for run_id, run_rows in by_run.items():
                with self.run_connection(run_id) as conn:
                    conn.execute(SqlEventLogStorageTable.insert(), run_rows)
        for event in events:
            if not _batched(event):
                self.store_event(event)


def _batched(event: EventLogEntry) -> bool:
    """An event :meth:`BatchingSqliteEventLogStorage.store_event_batch` writes in its batch."""
    return event.is_dagster_event and (
        event.dagster_event_type in ASSET_EVENTS
        or event.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
    )


def _check_planned_rows(event: EventLogEntry, event_id: int, serialized: str) -> list[dict]:
    """The rows Dagster's ``SqlEventLogStorage._store_asset_check_evaluation_planned`` writes
    for a check's planned event (one per partition, or one without a partition), with the event
    serialized once (``serialized``, the event's own row's text) instead of once a row."""
    planned = cast(AssetCheckEvaluationPlanned, event.get_dagster_event().event_specific_data)
    keys = planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
    timestamp = datetime.fromtimestamp(event.timestamp, UTC).replace(tzinfo=None)
    asset_key = planned.asset_key.to_string()
    return [
        dict(
            asset_key=asset_key,
            check_name=planned.check_name,
            partition=key,
            run_id=event.run_id,
            execution_status=AssetCheckExecutionRecordStatus.PLANNED.value,
            evaluation_event=serialized,
            evaluation_event_timestamp=timestamp,
            evaluation_event_storage_id=event_id,
        )
        for key in keys
    ]
