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

The events Dagster writes one by one (each dbt test's check result and each step output: a
one-day options build writes about 200) pay for more than their statements: Dagster's SQLite
storage builds a SQLAlchemy engine for every statement, opens the database file, and closes it
after the commit, and closing the last connection of a WAL database checkpoints its log into
the database and deletes it. A check result writes the cross-run index twice. This storage
keeps an engine and one idle connection for the index. A run's own database is opened and
closed for each event as Dagster does: Dagster's watcher of a run's events (the UI's live run
log) wakes when that file changes, which a kept connection would put off to the next
checkpoint. Only the engine of a run's database is kept (for the latest
:data:`RUN_ENGINES` runs, each without a pool: a new connection per use, closed after it),
which saves building it and SQLAlchemy's first-connect setup at every event (about 1.5 ms an
event).

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
from collections import OrderedDict, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
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
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
)
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool, QueuePool

#: The runs' databases whose engines are kept (the latest used): a process writes to a few
#: runs at a time (a run worker to its own; the daemon to the runs it launches or fails).
RUN_ENGINES = 8


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """:class:`SqliteEventLogStorage` whose :meth:`store_event_batch` writes a batch in one
    transaction per database, in Dagster's own place for it, ``<dagster_home>/history/runs``.

    Config: ``dagster_home``, the instance's folder (``{env: DAGSTER_HOME}`` in the shipped
    dagster.yaml: a dagster.yaml cannot name its own folder, and Dagster's SQLite default
    derives it from the folder the instance was loaded from, which a storage never sees).
    """

    def __init__(self, dagster_home: str, inst_data: ConfigurableClassData | None = None):
        self.dagster_home = dagster_home
        self._index_engine: Engine | None = None
        self._index_engine_pid = os.getpid()
        #: an index engine a forked child inherited: kept, never used nor closed (below)
        self._inherited: list[Engine] = []
        #: the engines of the latest runs' databases, without a pool (see _run_engine)
        self._run_engines: OrderedDict[str, Engine] = OrderedDict()
        #: the index's tables known to exist (see has_table)
        self._tables: set[str] = set()
        super().__init__(
            base_dir=os.path.join(dagster_home, "history", "runs"), inst_data=inst_data
        )

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        """A connection to ``shard``'s database in a transaction, committed on leaving, as
        Dagster's ``SqliteEventLogStorage._connect`` gives, from an engine kept for the
        database instead of a new engine each time (the module docstring says why): for the
        index, one idle connection kept; for a run's database, none (a connection opened and
        closed per use, as Dagster's).

        The kept connection is idle between uses (no transaction open), so other processes
        read and write the index as before. In a forked child the parent's engine is never
        used (two processes on one SQLite connection corrupt it) nor closed (closing the last
        connection of a WAL database checkpoints and deletes the parent's log): the child
        opens its own.
        """
        with self._db_lock:
            engine = self._engine() if shard == INDEX_SHARD_NAME else self._run_engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        """Whether the index holds ``table_name``: Dagster's answer, remembered once it is yes.

        Dagster asks it for every check result it stores (``supports_asset_checks``) and every
        batch of tagged asset events, and answers by building a SQLAlchemy engine and reading
        the database's schema (about a tenth of what storing a check result cost). Its
        migrations only ever add tables, and wiping an instance empties them without dropping
        them, so a table once found stays; a table not found is asked about again.
        """
        if table_name in self._tables:
            return True
        found = super().has_table(table_name)
        if found:
            self._tables.add(table_name)
        return found

    def _engine(self) -> Engine:
        """The engine kept for the index (made on first use). Called under ``_db_lock``."""
        if self._index_engine_pid != os.getpid():
            if self._index_engine is not None:
                self._inherited.append(self._index_engine)
            self._index_engine = None
            self._index_engine_pid = os.getpid()
        if self._index_engine is None:
            self._index_engine = create_engine(
                self.conn_string_for_shard(INDEX_SHARD_NAME),
                poolclass=QueuePool,
                pool_size=1,
                max_overflow=-1,  # never wait for a connection: one more is opened and closed
                connect_args={
                    "timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
                    # used by one thread at a time, under _db_lock
                    "check_same_thread": False,
                },
            )
        return self._index_engine

    def _run_engine(self, shard: str) -> Engine:
        """The engine of a run's database ``shard``: Dagster's (no pool, its busy timeout),
        kept for the latest :data:`RUN_ENGINES` runs. Without a pool it holds no connection,
        so a forked child may use its parent's. Called under ``_db_lock``."""
        engine = self._run_engines.pop(shard, None)
        if engine is None:
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=NullPool,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
            )
        self._run_engines[shard] = engine  # the latest used last
        while len(self._run_engines) > RUN_ENGINES:
            _, oldest = self._run_engines.popitem(last=False)
            oldest.dispose()
        return engine

    def dispose(self) -> None:
        super().dispose()
        with self._db_lock:
            for engine in self._run_engines.values():
                engine.dispose()
            self._run_engines.clear()
            if self._index_engine is not None and self._index_engine_pid == os.getpid():
                self._index_engine.dispose()
            self._index_engine = None
            self._index_engine_pid = os.getpid()

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
