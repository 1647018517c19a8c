"""The dbt project, its translator to Dagster assets, and the ``--vars`` builder.

This module is the single place that decides how dbt nodes look in Dagster: asset keys,
groups, partition mappings to the raw assets, and the link to each model's page.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from datetime import timedelta
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from dagster._record import replace
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliInvocation,
    DbtCliResource,
    DbtProject,
)
from dagster_dbt.dbt_project import DbtProjectPreparer, using_dagster_dev

from mkt_platform import settings

if TYPE_CHECKING:
    import duckdb

DBT_PROJECT_DIR = settings.DBT_PROJECT_DIR


def dbt_executable() -> str:
    """The dbt to run: ``mkt-dbt`` beside this Python (dbt, killed when the run process that
    started it dies; see :mod:`mkt_platform.lib.dbt_child`), else the ``dbt`` beside this
    Python (a venv need not be activated), else PATH's."""
    for name in ("mkt-dbt", "dbt"):
        beside = Path(sys.executable).parent / name
        if beside.exists():
            return str(beside)
    return shutil.which("dbt") or "dbt"


class MktDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt resource without the work it does before every invocation that this
    platform does not use.

    dagster-dbt asks the executable for its version (a ``dbt --version`` subprocess, about
    4.5 s here) on each new resource, and builds a dbt adapter (about 3 s) on every
    invocation, only to fetch column metadata or row counts through it. Our dbt is the one
    installed beside this Python (:func:`dbt_executable`), so its version is the imported
    ``dbt.version``; and the column schemas are read from the warehouse after dbt has closed
    it (:func:`with_warehouse_metadata`), so no adapter is built. And each command runs in this
    process (:meth:`cli`), not in a child that imports dbt again.
    """

    @cached_property
    def _cli_version(self):  # type: ignore[override]
        if Path(self.dbt_executable).parent == Path(sys.executable).parent:
            from dbt.version import __version__
            from packaging import version

            return version.parse(__version__)
        return super()._cli_version

    def _initialize_dbt_core_adapter(self, args):  # type: ignore[override]
        return None

    def cli(self, args, **kwargs):  # type: ignore[override]
        """dagster-dbt's ``cli``, with the command run in this process when
        ``MKT_DBT_IN_PROCESS`` is on (the default; :mod:`mkt_platform.lib.dbt_in_process`),
        else in a child process as dagster-dbt runs it."""
        if not settings.dbt_in_process():
            from mkt_platform.lib.dbt_child import PARENT_PID_ENV

            # mkt-dbt dies with this process: tell it which process that is (it may be
            # adopted before it asks for its parent; see mkt_platform.lib.dbt_child).
            with environment({PARENT_PID_ENV: str(os.getpid())}):
                return super().cli(args, **kwargs)
        import dagster_dbt.core.resource as resource_module

        from mkt_platform.lib.dbt_in_process import invocation_class

        # dagster-dbt's cli starts the command through the DbtCliInvocation of its module:
        # that name is this project's in-process invocation while cli runs (under a lock, as
        # another thread of this process may be starting a dbt command of its own).
        with _CLI_START:
            resource_module.DbtCliInvocation = invocation_class()
            try:
                return super().cli(args, **kwargs)
            finally:
                resource_module.DbtCliInvocation = _DAGSTER_DBT_INVOCATION


_CLI_START = threading.Lock()
_DAGSTER_DBT_INVOCATION = DbtCliInvocation


def dbt_resource() -> MktDbtCliResource:
    """The ``dbt`` resource of every dbt asset: this project, the dbt beside this Python."""
    return MktDbtCliResource(project_dir=dbt_project(), dbt_executable=dbt_executable())


def _project_changed_since(project_dir: Path, manifest: Path) -> bool:
    """Whether a file of the dbt project in ``project_dir`` (models, macros, tests, yml) is
    newer than ``manifest`` (which exists)."""
    parsed = manifest.stat().st_mtime
    for folder in ("models", "macros", "tests", "seeds", "snapshots"):
        for path in (project_dir / folder).rglob("*"):
            if path.is_file() and path.stat().st_mtime > parsed:
                return True
    return any(
        (project_dir / name).stat().st_mtime > parsed
        for name in ("dbt_project.yml", "profiles.yml")
        if (project_dir / name).exists()
    )


class MktDbtProjectPreparer(DbtProjectPreparer):
    """How this platform prepares the dbt manifest (``DbtProject.prepare_if_dev``).

    dagster-dbt's default preparer parses on every load under ``dagster dev`` (seconds per
    code-location reload, and at once in every process that loads it) and never elsewhere, with
    a bare ``dbt`` (not on PATH when the venv is not activated). This one parses with the dbt
    beside this Python (:func:`dbt_executable`), only when the manifest is missing, and under
    ``dagster dev``/``dg dev`` also when a project file changed since; otherwise the saved
    manifest is used (the deployment image parses at build time). Processes starting together
    (test workers, the services of a deployment) parse one at a time under a file lock, and the
    later ones find the manifest ready.
    """

    def prepare_if_dev(self, project: DbtProject) -> None:
        if self._stale(project):
            with self._parse_lock(project):
                if self._stale(project):
                    self._parse(project)

    def prepare(self, project: DbtProject) -> None:
        with self._parse_lock(project):
            self._parse(project)

    @staticmethod
    def _stale(project: DbtProject) -> bool:
        return not project.manifest_path.exists() or (
            using_dagster_dev()
            and _project_changed_since(project.project_dir, project.manifest_path)
        )

    @staticmethod
    @contextmanager
    def _parse_lock(project: DbtProject) -> Iterator[None]:
        import fcntl

        target = project.project_dir / project.target_path
        target.mkdir(parents=True, exist_ok=True)
        with open(target / ".parse.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    @staticmethod
    def _parse(project: DbtProject) -> None:
        # The --vars of every build (dbt_vars): a saved parse is re-used only under the same.
        MktDbtCliResource(project_dir=project, dbt_executable=dbt_executable()).cli(
            ["parse", "--quiet", "--vars", dbt_vars_json()],
            target_path=project.target_path,
        ).wait()
        # ... and under the same profile target: kept as this warehouse kind's.
        target = project.project_dir / project.target_path
        _keep_parse(target / PARTIAL_PARSE_FILE, _project_parse(project))


def parse_project() -> None:
    """Parse the dbt project into its own target folder, with the ``--vars`` of every run: the
    manifest the code location reads, and the saved parse a data directory's first dbt run
    starts from (:func:`project_parse`). The image runs it at build (``Dockerfile``)."""
    MktDbtProjectPreparer().prepare(dbt_project())


@cache
def dbt_project() -> DbtProject:
    """The dbt project, with its manifest prepared (:class:`MktDbtProjectPreparer`), so that
    loading the code location pays no dbt parse when the saved manifest is current."""
    # DbtProject takes no preparer argument (it builds dagster-dbt's own); it is a Dagster
    # record, replaced field by field as dagster-dbt itself does.
    project = replace(
        DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR),
        preparer=MktDbtProjectPreparer(),
    )
    project.prepare_if_dev()
    return project


#: The environment variables that carry a run's window to the models, per family of
#: partitioned dbt models: session marts by session start, the UTC-daily marts (options,
#: funding) by hour. Each is half-open ``[min, max)``, an ISO 8601 UTC timestamp; unset or
#: empty, the incremental models rebuild everything. The macros read them as the default of
#: the dbt var of the same name in lower case without the prefix (``--vars`` still wins, for a
#: person running dbt by hand). They are environment variables, not ``--vars``, because dbt
#: throws away its saved parse whenever ``--vars`` change, and re-parses only the files that
#: read an environment variable whose value changed (see :func:`partial_parse_cache`).
WINDOW_ENV = {
    "session": ("MKT_DBT_SESSION_START_MIN", "MKT_DBT_SESSION_START_MAX"),
    "utc_hour": ("MKT_DBT_OPTIONS_HOUR_MIN", "MKT_DBT_OPTIONS_HOUR_MAX"),
}


def dbt_vars() -> dict[str, Any]:
    """The ``--vars`` of every dbt run: the platform's session settings.

    Returns:
        ``session_anchor_hour`` (int) and ``session_weekday`` (ISO weekday, int). They change
        only with the settings, so dbt's saved parse stays valid from run to run.
    """
    return {
        "session_anchor_hour": settings.session_anchor_hour(),
        "session_weekday": settings.weekly_session_weekday(),
    }


def dbt_window_env(time_window: dg.TimeWindow | None, window: str = "session") -> dict[str, str]:
    """The environment of a dbt run that carries its partition window (every window variable
    of :data:`WINDOW_ENV`, so none is left over from another run).

    Args:
        time_window: the run's partition window ``[start, end)`` (aware UTC datetimes), or
            ``None`` for an unpartitioned run, which rebuilds everything.
        window: which family's variables to set (a key of ``WINDOW_ENV``): ``session`` for
            the session marts, ``utc_hour`` for the hourly options and funding marts.

    Returns:
        ``{variable: ISO 8601 UTC string}`` for the family's two bounds, and ``""`` for
        every other window variable.
    """
    env = {name: "" for names in WINDOW_ENV.values() for name in names}
    if time_window is not None:
        low, high = WINDOW_ENV[window]
        env[low] = time_window.start.isoformat()
        env[high] = time_window.end.isoformat()
    return env


def dbt_vars_json() -> str:
    """:func:`dbt_vars` as the JSON of dbt's ``--vars`` (every dbt command the platform runs
    passes the same, so that each re-uses the others' saved parse)."""
    return json.dumps(dbt_vars(), sort_keys=True)


def dbt_build_args() -> list[str]:
    """Arguments of the ``dbt build`` of a partition run (the window goes in the environment,
    :func:`dbt_window_env`).

    dbt's unit tests are left out: they test the SQL of a model on fixed rows, which no
    partition changes, so they run once per change of the code, in CI
    (``tests/test_dbt.py``), not in every partition run. The data tests run.

    ``--no-write-json``: dbt writes no ``manifest.json`` (1.8 MB, twice: after its parse and
    after the build) nor ``run_results.json`` into the run's target folder, about 0.5 CPU-s a
    command. Nothing reads them: Dagster takes every result from dbt's events, and the
    folder keeps ``dbt.log`` (each node's result and timing) and the compiled SQL.
    """
    return [
        "build",
        "--vars",
        dbt_vars_json(),
        "--exclude-resource-type",
        "unit_test",
        "--no-write-json",
    ]


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set for the block, restored after (dagster-dbt passes
    this process's environment to dbt)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


PARTIAL_PARSE_FILE = "partial_parse.msgpack"


def _kept_parse_name() -> str:
    """The name a saved parse is kept under: ``partial_parse.<kind>.<vars>.msgpack``, the
    warehouse kind (the two are two targets of the profile) and a hash of the ``--vars``
    (:func:`dbt_vars_json`): dbt re-uses a parse only under the same target and vars, so a
    parse of each is kept apart (a data directory rebuilt under the other kind, or tests
    whose session anchor differs, would otherwise replace each other's)."""
    digest = hashlib.sha256(dbt_vars_json().encode()).hexdigest()[:8]
    return f"partial_parse.{settings.warehouse_kind()}.{digest}.msgpack"


def dbt_runs_dir() -> Path:
    """The target folders of the dbt invocations of this data directory
    (``$MKT_DATA_DIR/dbt/runs/<dbt asset>-<run id>-<suffix>``)."""
    return settings.data_dir() / "dbt" / "runs"


def partial_parse_cache() -> Path:
    """Where dbt's saved parse is kept between runs: beside the warehouse.

    dbt keeps its parse in ``<target>/partial_parse.msgpack`` and re-uses it only when the
    profile, its target and ``--vars`` are unchanged, re-parsing the files that read an
    environment variable whose value changed. Kept per data directory (one per warehouse
    kind and ``--vars``: :func:`_kept_parse_name`), the parse survives from run to run with
    nothing to re-parse. A data directory's first run starts from the project's own saved
    parse of the same kind and vars (:func:`project_parse`): nothing in the
    project reads a path while dbt parses (the lake's root is the DuckDB variable ``mkt_lake``)
    and neither target of ``dbt_project/profiles.yml`` holds one (the plugin attaches the
    warehouse), so nothing is parsed again.
    """
    return settings.data_dir() / "dbt" / _kept_parse_name()


def project_parse() -> Path:
    """The parse saved in the dbt project's own target folder for this process's warehouse
    kind and ``--vars`` (:func:`_kept_parse_name`). Written when the code location prepares
    the project (:meth:`MktDbtProjectPreparer.prepare_if_dev`, or :func:`parse_project`), and
    renewed by each data directory's first dbt run (:func:`invocation_target`)."""
    return _project_parse(dbt_project())


def _project_parse(project: DbtProject) -> Path:
    return project.project_dir / project.target_path / _kept_parse_name()


def prime_saved_parse(target: Path) -> None:
    """Put the data directory's saved parse (:func:`partial_parse_cache`), else the
    project's (:func:`project_parse`), where dbt looks for it in the target folder
    ``target``; nothing if neither exists (dbt parses in full)."""
    for saved in (partial_parse_cache(), project_parse()):
        if saved.exists():
            shutil.copyfile(saved, target / PARTIAL_PARSE_FILE)
            return


def _keep_parse(saved: Path, kept: Path) -> None:
    """Copy the parse ``saved`` to ``kept`` by an atomic replace (a reader finds the old file
    or the new, never half of one)."""
    temporary = kept.with_name(f".{kept.name}.{uuid.uuid4().hex}")
    shutil.copyfile(saved, temporary)
    os.replace(temporary, kept)


@contextmanager
def invocation_target(name: str, run_id: str) -> Iterator[Path]:
    """A fresh target folder for one dbt invocation, primed with the saved parse.

    dagster-dbt gives every invocation its own target folder (so that runs keep their
    artifacts apart), where dbt finds no saved parse; this one starts with the data
    directory's (:func:`partial_parse_cache`; for its first, the project's:
    :func:`project_parse`). When the block ends, the parse dbt saved is
    kept for the next run (an atomic replace), and, after a data directory's first run, for
    the project too (it had none for this warehouse kind, or one from before a change of the
    project or the profile, which dbt had to parse again; where the project's folder is
    read-only, it is not), and the older folders of the same dbt asset are removed: the
    latest invocation's artifacts and ``dbt.log`` stay for a person to read, and folders
    never pile up.

    Args:
        name: the dbt asset (op) name, e.g. ``session_daily_dbt``.
        run_id: the Dagster run.
    """
    runs_dir = dbt_runs_dir()
    target = runs_dir / f"{name}-{run_id[:8]}-{uuid.uuid4().hex[:6]}"
    target.mkdir(parents=True)
    cache_file = partial_parse_cache()
    first = not cache_file.exists()
    prime_saved_parse(target)
    try:
        yield target
    finally:
        saved = target / PARTIAL_PARSE_FILE
        if saved.exists():
            _keep_parse(saved, cache_file)
            if first:  # the project's parse, missing or made before a change, is renewed
                with suppress(OSError):
                    _keep_parse(saved, project_parse())
        for older in runs_dir.glob(f"{name}-*"):
            if older != target and older.is_dir():
                shutil.rmtree(older, ignore_errors=True)


_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


def wait_for_warehouse(
    path: Path, timeout_seconds: float, log: Any, poll_seconds: float = 1.0
) -> float:
    """Wait until no other process holds the DuckDB warehouse, saying who holds it.

    DuckDB lets one process write a database file only while no other has it open, even
    read-only: a notebook left open would make dbt fail at once with "Conflicting lock". The
    warehouse is opened read-write and closed again until that succeeds.

    Returns:
        The seconds waited.

    Raises:
        dagster.Failure: still held after ``timeout_seconds``; names the holder's program
            and PID, and the setting.
    """
    import duckdb

    from mkt_platform.lib import duckdb_extensions

    started = time.monotonic()
    said = None
    while True:
        try:
            duckdb_extensions.connect(str(path)).close()
            return time.monotonic() - started
        except duckdb.IOException as exc:
            holder = _LOCK_HOLDER.search(str(exc))
            if holder is None:
                raise
            who = f"PID {holder['pid']} ({holder['program']})"
        waited = time.monotonic() - started
        if waited >= timeout_seconds:
            raise dg.Failure(
                description=(
                    f"the warehouse {path} is held by another process, {who}, and was still "
                    f"after {waited:.0f}s: dbt needs it alone (DuckDB allows one writer and no "
                    "reader beside it). Close that connection (a notebook, the DuckDB CLI, a BI "
                    "tool) and run again; MKT_WAREHOUSE_LOCK_WAIT_SECONDS sets the wait."
                )
            )
        if said is None or time.monotonic() - said >= 10:
            said = time.monotonic()
            log.warning(
                f"the warehouse {path} is held by {who}: waiting ({waited:.0f}s of at most "
                f"{timeout_seconds:.0f}s)"
            )
        time.sleep(poll_seconds)


def stream_dbt_build(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, window: str, unit: str
) -> Iterator[Any]:
    """Run ``dbt build`` for the run's partition window and stream its events to Dagster.

    Args:
        window: which window vars to pass (a key of ``WINDOW_VARS``).
        unit: what a partition is, for the log line (``session``, ``UTC day``).
    """
    # dbt runs in its own process with the project folder as working directory: give it the
    # data directory as an absolute path so both read and write the same lake.
    os.environ["MKT_DATA_DIR"] = str(settings.data_dir())
    # DuckDB creates the warehouse file but not its folder.
    settings.data_dir().mkdir(parents=True, exist_ok=True)
    # dbt reads MKT_WAREHOUSE in its profile: check it here, with a clear message.
    if settings.warehouse_kind() == "duckdb":
        wait_for_warehouse(
            settings.warehouse_path(), settings.warehouse_lock_wait_seconds(), context.log
        )
    # (A DuckLake warehouse has no file lock: readers and dbt work at once.)
    time_window = context.partition_time_window
    context.log.info(
        f"dbt build for {len(context.partition_keys)} {unit}(s) "
        f"{time_window.start:%Y-%m-%d %H:%M} to {time_window.end:%Y-%m-%d %H:%M} UTC"
    )
    # The warehouse allows one process at a time, and dbt holds it until it exits: the events
    # are kept until then, so that each model's materialization can carry what the warehouse
    # now holds (column schema, row counts; see :func:`with_warehouse_metadata`).
    events: list[Any] = []
    try:
        with (
            environment(dbt_window_env(time_window, window)),
            invocation_target(context.op_execution_context.op.name, context.run.run_id) as target,
        ):
            invocation = dbt.cli(dbt_build_args(), context=context, target_path=target)
            for event in invocation.stream():
                events.append(event)
    except Exception:
        # dbt failed part-way: what it did build is still recorded, then the failure raised.
        yield from with_warehouse_metadata(context, events, time_window)
        raise
    yield from with_warehouse_metadata(context, events, time_window)


#: The definition metadata key naming the column a dbt model's partition window filters on
#: (from the model's dbt ``meta``, e.g. ``session_start``); Dagster's name for it (as in its
#: IO managers' ``partition_expr``).
PARTITION_EXPR = "partition_expr"


def warehouse_metadata(
    relations: Mapping[str, str | None],
    window: dg.TimeWindow | None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> dict[str, dict[str, Any]]:
    """What the DuckDB warehouse holds now, per relation, as Dagster table metadata.

    One read-only connection, after dbt has closed the warehouse (DuckDB allows a single
    writer, and no reader beside it): the columns of every relation from
    ``information_schema``, and for each table (not a view: counting a view runs its query,
    which scans the lake) its rows.

    Args:
        relations: dbt relations as ``<catalog>.<schema>.<table>`` (``dagster/table_name``),
            each with the column its partition window filters on (``partition_expr``), or
            ``None`` for a relation with no such column.
        window: the run's partition window ``[start, end)`` (aware UTC datetimes), or ``None``
            for an unpartitioned run.
        con: a read-only warehouse connection to use (and leave open); by default one is
            opened and closed.

    Returns:
        ``{relation: metadata}`` for each relation the warehouse holds (a relation it lacks is
        left out), with ``dagster/column_schema`` (a ``TableSchema`` in ordinal order, DuckDB's
        types: ``DOUBLE``, ``TIMESTAMP WITH TIME ZONE``, ``DECIMAL(38,18)``...), and for a
        table ``dagster/row_count`` (the rows of the whole table) and, when the run has a
        window and the relation a ``partition_expr``, ``dagster/partition_row_count`` (the
        rows whose ``partition_expr`` is in the window: what this run wrote, all of its
        partitions together for a ranged run).

    Raises:
        duckdb.Error: the warehouse cannot be opened read-only (it is missing or locked).
    """
    wanted = {tuple(name.split(".")[-2:]): name for name in relations}
    found: dict[str, dict[str, Any]] = {}
    # In UTC: a DATE partition column compares with the window as UTC midnight.
    with _reader(con) as con:
        rows = con.execute(
            "select c.table_schema, c.table_name, c.column_name, c.data_type, c.is_nullable, "
            "t.table_type = 'BASE TABLE' from information_schema.columns c "
            "join information_schema.tables t using (table_catalog, table_schema, table_name) "
            "where c.table_catalog = current_database() "
            "order by c.table_schema, c.table_name, c.ordinal_position"
        ).fetchall()
        columns: dict[str, list[dg.TableColumn]] = {}
        tables: dict[str, tuple[str, str]] = {}
        for schema, table, column, data_type, nullable, is_table in rows:
            relation = wanted.get((schema, table))
            if relation is None:
                continue
            columns.setdefault(relation, []).append(
                dg.TableColumn(
                    name=column,
                    type=data_type,
                    constraints=dg.TableColumnConstraints(nullable=nullable == "YES"),
                )
            )
            if is_table:
                tables[relation] = (schema, table)
        for relation, cols in columns.items():
            found[relation] = {"dagster/column_schema": dg.TableSchema(columns=cols)}
        for relation, (schema, table) in tables.items():
            column = relations[relation]
            names = {c.name for c in columns[relation]}
            in_window = window is not None and column in names
            counted = f'"{schema}"."{table}"'
            if in_window:
                total, partition = con.execute(
                    f'select count(*), count(*) filter (where "{column}" >= $1 '
                    f'and "{column}" < $2) from {counted}',
                    [window.start, window.end],
                ).fetchone()
                found[relation]["dagster/partition_row_count"] = partition
            else:
                (total,) = con.execute(f"select count(*) from {counted}").fetchone()
            found[relation]["dagster/row_count"] = total
    return found


def _reader(con: duckdb.DuckDBPyConnection | None) -> AbstractContextManager[Any]:
    """``con`` left open, or a new read-only warehouse connection closed on leaving."""
    if con is not None:
        return nullcontext(con)
    from mkt_platform import warehouse

    return warehouse.connect(read_only=True)


def with_warehouse_metadata(
    context: dg.AssetExecutionContext, events: list[Any], window: dg.TimeWindow | None
) -> Iterator[Any]:
    """``events`` as dbt streamed them, each model's output or materialization carrying what
    the warehouse holds after the run (:func:`warehouse_metadata`): the column schema (types
    from DuckDB, descriptions from the dbt yml; for the column schema change checks), and for
    a table its row counts (``dagster/row_count``, ``dagster/partition_row_count``). Other
    events pass unchanged; if the warehouse cannot be read, a warning is logged and the events
    pass without this metadata. ``window`` is the run's partition window (``None``: none).

    Why not dagster-dbt's ``fetch_column_metadata()``/``fetch_row_counts()``: they query
    through a dbt adapter built in this process for every invocation (about 3 s, which
    :class:`MktDbtCliResource` skips), open a connection per model, and count whole tables
    only; this reads everything in one read-only connection once dbt has exited, and counts
    the run's window too.
    """
    specs = context.assets_def.specs_by_key

    def key_of(event: Any) -> dg.AssetKey | None:
        if isinstance(event, dg.Output):
            return context.asset_key_for_output(event.output_name)
        if isinstance(event, dg.AssetMaterialization):
            return event.asset_key
        return None

    relations = {
        key: str(specs[key].metadata["dagster/table_name"])
        for key in filter(None, map(key_of, events))
        if key in specs and "dagster/table_name" in specs[key].metadata
    }
    found: dict[str, dict[str, Any]] = {}
    if relations:
        partition_exprs = {
            relation: specs[key].metadata.get(PARTITION_EXPR) for key, relation in relations.items()
        }
        # One connection for both: opening the warehouse (DuckDB, its extensions, the
        # DuckLake catalog) costs about a quarter of a second.
        from mkt_platform import warehouse

        try:
            with warehouse.connect(read_only=True) as con:
                found = warehouse_metadata(partition_exprs, window, con)
                try:
                    for relation, chart in chart_metadata(found, window, con).items():
                        found[relation]["chart"] = chart
                except Exception as exc:  # nor on a chart
                    context.log.warning(f"chart not drawn: {exc}")
        except Exception as exc:  # the run's outcome must not depend on this metadata
            context.log.warning(f"table metadata not read from the warehouse: {exc}")
    for event in events:
        key = key_of(event)
        metadata = found.get(relations.get(key, "")) if key is not None else None
        if metadata is None:
            yield event
            continue
        # The spec keeps dagster-dbt's TableSchema as given (names and yml descriptions).
        declared = specs[key].metadata.get("dagster/column_schema")
        declared = getattr(declared, "value", declared)
        descriptions = {c.name: c.description for c in declared.columns} if declared else {}
        schema = metadata["dagster/column_schema"]
        metadata["dagster/column_schema"] = dg.TableSchema(
            columns=[
                dg.TableColumn(
                    name=c.name,
                    type=c.type,
                    description=descriptions.get(c.name),
                    constraints=c.constraints,
                )
                for c in schema.columns
            ]
        )
        yield event.with_metadata({**event.metadata, **metadata})


def chart_metadata(
    relations: Iterable[str],
    window: dg.TimeWindow | None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> dict[str, dg.MarkdownMetadataValue]:
    """The chart of each charted mart among ``relations`` (``<catalog>.<schema>.<table>``)
    for the run's window, drawn from the warehouse's rows (:mod:`mkt_platform.lib.charts`),
    as markdown with an inline PNG, which the Dagster UI renders. Empty when nothing is
    charted, the run has no window, or ``MKT_CHARTS=0``. ``con``: as for
    :func:`warehouse_metadata`.

    Raises:
        duckdb.Error: the warehouse cannot be opened read-only.
    """
    from mkt_platform.lib.charts import CHARTS

    charted = [r for r in relations if r.split(".")[-1] in CHARTS]
    if not charted or window is None or not settings.charts_enabled():
        return {}
    drawn: dict[str, dg.MarkdownMetadataValue] = {}
    with _reader(con) as con:
        for relation in charted:
            chart = CHARTS[relation.split(".")[-1]](con, window.start, window.end)
            if chart is not None:
                drawn[relation] = dg.MetadataValue.md(chart.markdown())
    return drawn


#: The dbt tag of the models over captured streams (and the REST pulls that fill their gaps).
CAPTURE_TAG = "capture"


#: The dbt ``meta`` key of a model refreshed at most once per tick of a cron (UTC), when its
#: inputs change more often than a rebuild is worth (``order_book_depth``: 5-minute snapshots).
REFRESH_CRON = "refresh_cron"


def refresh_condition(
    partial_inputs: bool = False, at_most_every: str | None = None
) -> dg.AutomationCondition:
    """When a derived partition is refreshed: a partition of the latest time window or within
    ``MKT_AUTOMATION_LOOKBACK_DAYS`` (default 3) plus one day before its end (so every session
    over a raw day of the lookback qualifies), whose dependencies were updated
    (or will be on this tick) since it was last handled, with none of them missing or in
    progress, every blocking data-quality check of the dependencies passed (bad raw data
    never reaches a mart), and the partition not in progress itself.

    Unlike ``AutomationCondition.eager()``, an older partition is refreshed too (a raw day
    re-pulled two days later), and a partition that was never built is not back-filled by
    automation (that is a backfill's job).

    With ``partial_inputs`` (the models tagged ``capture``), a missing dependency does not
    hold the partition back: a UTC day of captured data is built from the hours closed so
    far (its 24 hourly partitions are all there only once the day is over, and never for a
    day the capture was down), and a day of one-minute candles needs no REST pull when the
    capture lost nothing.

    With ``at_most_every`` (a cron, UTC), the partition is refreshed at most once per tick of
    it: after a tick has passed since it was last handled (a mart over the 5-minute
    snapshots, rebuilt every 15 minutes rather than after each, waits at most 15 minutes
    more; each rebuild is a run, about 9 CPU-s).
    """
    days = settings.automation_lookback_days()
    # One day more than the setting: a raw UTC day of the last N days also feeds the session
    # that started the day before it (a session from 08:00 to 08:00 overlaps two UTC days).
    lookback = timedelta(days=days + 1)
    # Dagster counts only partitions wholly inside [latest end - lookback, latest end], so a
    # weekly partition (longer than the lookback) would never qualify: keep the latest window.
    recent = dg.AutomationCondition.in_latest_time_window() | (
        dg.AutomationCondition.in_latest_time_window(lookback_delta=lookback)
    )
    condition = recent & dg.AutomationCondition.any_deps_updated().since_last_handled()
    if not partial_inputs:
        condition &= ~dg.AutomationCondition.any_deps_missing()
    condition &= (
        ~dg.AutomationCondition.any_deps_in_progress()
        & dg.AutomationCondition.all_deps_blocking_checks_passed()
        & ~dg.AutomationCondition.in_progress()
    )
    inputs = "as they land" if partial_inputs else "update"
    label = f"refresh when deps {inputs} (raw days of the last {days} days)"
    if at_most_every:
        condition &= dg.AutomationCondition.cron_tick_passed(at_most_every).since_last_handled()
        label += f", at most once per '{at_most_every}' (UTC)"
    return condition.with_label(label)


#: The owners of a dbt node whose yml names none (``meta: {dagster: {owners: [...]}}``, set
#: for the whole project in ``dbt_project.yml``, or ``meta: {owner: ...}``).
DEFAULT_DBT_OWNERS = ("team:data-platform",)


def dbt_owners(dbt_resource_props: Mapping[str, Any]) -> list[str]:
    """The Dagster owners of a dbt node, from its dbt ``meta``: ``dagster.owners`` (dagster-dbt's
    key, a list of emails or ``team:<name>``), else ``owner`` (dbt's convention: an email, or a
    team name, which becomes ``team:<name>``; one or a list), else :data:`DEFAULT_DBT_OWNERS`."""
    meta = dbt_resource_props.get("meta") or {}
    owners = (meta.get("dagster") or {}).get("owners")
    if owners:
        return list(owners)
    owner = meta.get("owner")
    if owner:
        names = [owner] if isinstance(owner, str) else list(owner)
        return [n if "@" in n or n.startswith("team:") else f"team:{n}" for n in names]
    return list(DEFAULT_DBT_OWNERS)


def dbt_description(dbt_resource_props: Mapping[str, Any]) -> str:
    """A dbt node's description as its yml gives it, without the raw SQL that dagster-dbt
    appends (the SQL is one click away: the code reference and the ``dbt_docs`` link)."""
    return (dbt_resource_props.get("description") or "").strip() or (
        f"dbt {dbt_resource_props['resource_type']} {dbt_resource_props['name']}"
    )


#: dagster-dbt's definition metadata entries that are no property of the data: the
#: ``DbtProject`` object (shown as ``[DbtProject] (unserializable)`` in the UI). The manifest
#: and translator entries stay: dagster-dbt reads them back at run time, and the UI hides them.
_DROPPED_METADATA = ("dagster_dbt/project",)


class MktDbtTranslator(DagsterDbtTranslator):
    """Asset keys are model names; groups are the dbt layer; raw sources map by time window;
    every model refreshes itself by declarative automation (:func:`refresh_condition`) and
    links to its page in the dbt docs; owners and descriptions come from the dbt yml
    (:meth:`get_asset_spec`)."""

    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_code_references=True))

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        """dagster-dbt's spec with the owners of :func:`dbt_owners`, the description of
        :func:`dbt_description` (no raw SQL), and no ``dagster_dbt/project`` metadata.

        dagster-dbt reads the project back from that metadata at run time, so without it
        ``project`` is ``None`` there: this project is used instead (code references need one).
        """
        spec = super().get_asset_spec(manifest, unique_id, project or dbt_project())
        props = self.get_resource_props(manifest, unique_id)
        return spec.replace_attributes(
            description=dbt_description(props),
            owners=dbt_owners(props),
            metadata={k: v for k, v in spec.metadata.items() if k not in _DROPPED_METADATA},
        )

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        meta_key = dbt_resource_props.get("meta", {}).get("dagster", {}).get("asset_key")
        if meta_key:
            return dg.AssetKey(meta_key)
        return dg.AssetKey(dbt_resource_props["name"])

    def get_metadata(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, Any]:
        """dagster-dbt's metadata (column schema, relation), plus ``dbt_docs``: the link to
        the node's page in the dbt docs site (``MKT_DBT_DOCS_URL``), ``partition_expr``:
        the column the model's partition window filters on, from its dbt ``meta`` (for the
        row count of a run's window, :func:`warehouse_metadata`), and ``optional_reads``:
        the marts it reads only if they exist."""
        metadata = dict(super().get_metadata(dbt_resource_props))
        kind = dbt_resource_props["resource_type"]
        if kind in ("model", "seed", "snapshot", "source"):
            page = f"{settings.dbt_docs_url()}/#!/{kind}/{dbt_resource_props['unique_id']}"
            metadata["dbt_docs"] = dg.MetadataValue.url(page)
        meta = dbt_resource_props.get("meta") or {}
        if meta.get(PARTITION_EXPR):
            metadata[PARTITION_EXPR] = meta[PARTITION_EXPR]
        # the marts a model reads only if they exist (mkt_platform.lib.materialize.plan)
        if meta.get("optional_reads"):
            metadata["optional_reads"] = list(meta["optional_reads"])
        return metadata

    def get_automation_condition(
        self, dbt_resource_props: Mapping[str, Any]
    ) -> dg.AutomationCondition | None:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            return refresh_condition(
                CAPTURE_TAG in dbt_resource_props.get("tags", ()),
                (dbt_resource_props.get("meta") or {}).get(REFRESH_CRON),
            )
        return None

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        if dbt_resource_props["resource_type"] in ("model", "seed") and len(fqn) > 1:
            return {"staging": "staging", "intermediate": "intermediate"}.get(fqn[1], fqn[1])
        return super().get_group_name(dbt_resource_props)

    def get_partition_mapping(
        self,
        dbt_resource_props: Mapping[str, Any],
        dbt_parent_resource_props: Mapping[str, Any],
    ) -> dg.PartitionMapping | None:
        # A session (anchor hour to anchor hour) overlaps two UTC days of raw data; the
        # time-window mapping selects exactly the raw days that overlap the session window.
        if dbt_parent_resource_props.get("resource_type") == "source":
            return dg.TimeWindowPartitionMapping()
        return super().get_partition_mapping(dbt_resource_props, dbt_parent_resource_props)


@cache
def dbt_model_keys() -> tuple[dg.AssetKey, ...]:
    """The asset key of every dbt model of the project that is an asset (from its manifest;
    an ephemeral model is compiled into the models that read it, and is none), sorted; read
    once per process (the drift sensor asks at every tick), from the parse dagster-dbt's
    ``@dbt_assets`` read (its cached ``orjson`` read: about 0.1 s less at each code-location
    load than parsing the 1.8-MB manifest again with ``json``)."""
    from dagster_dbt.dbt_manifest import validate_manifest

    manifest = validate_manifest(dbt_project().manifest_path)
    translator = MktDbtTranslator()
    return tuple(
        sorted(
            translator.get_asset_key(node)
            for node in manifest["nodes"].values()
            if node["resource_type"] == "model"
            and node["config"].get("materialized") != "ephemeral"
        )
    )
