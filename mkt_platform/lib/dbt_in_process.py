"""dbt run in the process that asks for it (``dbtRunner``), behind dagster-dbt's interface.

dagster-dbt runs every dbt command as a child process and reads its JSON log from the pipe.
A child pays Python's start, dbt's import and its adapter's (about 2.4 CPU-s a command on
the development machine, against 0.4 CPU-s for the partial parse that follows), once per
command: a backfill pays it at every dbt step, a run worker at every run, the test suite a
few hundred times. Here the same command runs through dbt's programmatic entry point
(``dbt.cli.main.dbtRunner``, https://docs.getdbt.com/reference/programmatic-invocations) in
a thread of this process; its events, serialized as dbt's own ``--log-format json`` lines,
feed dagster-dbt's reader unchanged, so the assets, checks, errors and logs are the ones
the child process gave.

dbt's warnings about programmatic invocations hold here: one command at a time per process
(:data:`_ONE_AT_A_TIME`), and dbt changes the working directory while it runs (the project
folder). The environment dagster-dbt prepares for the child (the target folder, the log
format and path, the window of the run) is set in ``os.environ`` for the command and
restored after.

Killed with the process: there is no child to orphan. Interrupted (a run terminated from
the UI, SIGTERM): dagster-dbt forwards SIGINT; here it becomes dbt's own Ctrl-C
(``KeyboardInterrupt`` raised in dbt's thread, the open queries cancelled), and dbt stops
as it does on SIGINT.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import json
import os
import queue
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mkt_platform.lib.dbt import environment

#: dbt keeps global state (flags, adapters, the working directory): one command at a time.
_ONE_AT_A_TIME = threading.Lock()

#: The levels dbt writes to stdout by default (``--log-level info``): what the child process
#: gave dagster-dbt. Debug events go to ``dbt.log`` only, as before.
_STDOUT_LEVELS = frozenset({"info", "warn", "error"})

_DONE = object()

#: dbt's parse of the project made before this process was forked (:func:`preparse`), with
#: what it was made under; taken by the first dbt command that matches it (:func:`_take_parse`).
_preparsed: tuple[tuple[str, ...], Any] | None = None


class _Lines:
    """The stdout of an in-process dbt command: its events as JSON lines (bytes), ended when
    the command ends; shaped as the pipe dagster-dbt reads (iteration, ``closed``, ``with``)."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()
        self.closed = False

    def put(self, line: bytes) -> None:
        self._queue.put(line)

    def end(self) -> None:
        self._queue.put(_DONE)

    def __iter__(self) -> Iterator[bytes]:
        while not self.closed:
            line = self._queue.get()
            if line is _DONE:
                self.closed = True
                return
            yield line

    def __enter__(self) -> _Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class InProcessDbt:
    """A dbt command running in a thread of this process, with the parts of
    :class:`subprocess.Popen` that dagster-dbt's ``DbtCliInvocation`` uses: ``args``,
    ``stdout`` (dbt's JSON log lines), ``wait``, ``returncode`` and ``send_signal``.

    Args:
        args: the command line a child would get: the dbt executable, then dbt's arguments.
        env: the child's whole environment (dagster-dbt's: this process's, plus the target
            folder, log format and path, project and profiles folders).
        cwd: the dbt project folder.

    The exit code is dbt's: 0 success, 1 a node failed, 2 dbt itself failed (its error is
    among the events, as ``MainEncounteredError``).
    """

    def __init__(self, args: Sequence[str], env: Mapping[str, str], cwd: Path | str) -> None:
        self.args = list(args)
        self.stdout = _Lines()
        self.returncode: int | None = None
        self._env = dict(env)
        # dbt's stdout logger would print every line a second time (dagster-dbt echoes the
        # events it reads); its file log (dbt.log in the target folder) is kept.
        self._env["DBT_LOG_LEVEL"] = "none"
        self._env.setdefault("DBT_LOG_LEVEL_FILE", "debug")  # (it would follow the above)
        self._env.setdefault("DBT_PROJECT_DIR", str(cwd))
        # A child resolves relative paths against the project folder, its working directory;
        # dbt sets up its log before it moves there.
        for name in ("DBT_TARGET_PATH", "DBT_LOG_PATH"):
            if self._env.get(name):
                self._env[name] = str(Path(cwd, self._env[name]))
        self._thread = threading.Thread(target=self._run, name="dbt", daemon=True)
        self._thread.start()

    def _event(self, msg: Any) -> None:
        if msg.info.level in _STDOUT_LEVELS:
            from dbt_common.events.functions import msg_to_json

            self.stdout.put(msg_to_json(msg).encode())

    def _run(self) -> None:
        code = 2
        try:
            with _ONE_AT_A_TIME:
                # dagster-dbt's environment is this process's plus its own: set what differs
                changed = {k: v for k, v in self._env.items() if os.environ.get(k) != v}
                with environment(changed):
                    from dbt.cli.main import dbtRunner

                    try:
                        manifest = _take_parse(self.args, self._env)
                        runner = dbtRunner(manifest=manifest, callbacks=[self._event])
                        result = runner.invoke(self.args[1:])
                        code = 0 if result.success else (2 if result.exception else 1)
                        del result
                    finally:
                        _release_adapters(collect=code != 0)
        except BaseException as exc:  # dbt's thread must always end its stream
            self.stdout.put(json.dumps(_error_event(exc)).encode())
        finally:
            self.returncode = code
            self.stdout.end()

    def wait(self, timeout: float | None = None) -> int:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        """Stop dbt as SIGINT stops it: ``KeyboardInterrupt`` in its thread (dbt cancels its
        queries and ends the command), and every open query cancelled now."""
        if not self._thread.is_alive() or self._thread.ident is None:
            return
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(self._thread.ident), ctypes.py_object(KeyboardInterrupt)
        )
        try:
            from dbt.adapters.factory import FACTORY

            for adapter in list(FACTORY.adapters.values()):
                adapter.cancel_open_connections()
        except Exception:  # nothing open, or the adapter is gone already
            pass


def _parse_key(vars_json: str, env: Mapping[str, str]) -> tuple[str, ...]:
    """What a parse of the project depends on besides its files: the project and profiles
    folders, the ``--vars`` and the warehouse kind (the profile's target)."""
    from mkt_platform import settings

    return (
        str(Path(env.get("DBT_PROJECT_DIR", "")).resolve()),
        str(Path(env.get("DBT_PROFILES_DIR", "")).resolve()),
        vars_json,
        settings.warehouse_kind(),
    )


def preparse() -> None:
    """Parse the dbt project now (``dbt parse``, in this process, from the saved parse of the
    data directory or the project: dbt re-parses only what changed), and keep its manifest for
    the first matching dbt command of each process forked from this one (the code server's
    forkserver calls it before it forks any run: each run then starts dbt's build without a
    parse of its own, about half a second).

    The manifest is dbt's own, made by its own parse, from the files and settings as they are
    now: the same ones the code location's definitions were built from, and that the runs
    forked from here run (:mod:`mkt_platform.run_worker_modules`). A command whose project,
    profiles, ``--vars`` or warehouse kind differ parses as before; so does every command after
    a process's first (dbt compiles into the manifest it is given).

    Raises:
        RuntimeError: dbt's parse failed (its error in the message).
    """
    import tempfile

    from dbt.cli.main import dbtRunner

    from mkt_platform.lib import dbt as dbt_lib

    global _preparsed
    project = dbt_lib.dbt_project()
    env = {
        "DBT_PROJECT_DIR": str(project.project_dir),
        "DBT_PROFILES_DIR": str(project.profiles_dir or project.project_dir),
        "DBT_LOG_LEVEL": "none",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    vars_json = dbt_lib.dbt_vars_json()
    with tempfile.TemporaryDirectory() as target, _ONE_AT_A_TIME:
        dbt_lib.prime_saved_parse(Path(target))
        env |= {"DBT_TARGET_PATH": target, "DBT_LOG_PATH": target}
        with dbt_lib.environment(env):
            try:
                result = dbtRunner().invoke(["parse", "--vars", vars_json, "--no-write-json"])
            finally:
                _release_adapters()
    if not result.success:
        raise RuntimeError(f"dbt parse failed: {result.exception}")
    _preparsed = (_parse_key(vars_json, env), result.result)


def _take_parse(args: Sequence[str], env: Mapping[str, str]) -> Any:
    """The manifest of :func:`preparse` if this command (``args``: the executable then dbt's
    arguments; ``env``: its environment) runs under what it was made under, else ``None``
    (dbt parses). Given once: dbt compiles the nodes of the manifest it runs."""
    global _preparsed
    if _preparsed is None or "--vars" not in args:
        return None
    vars_json = args[list(args).index("--vars") + 1]
    key, manifest = _preparsed
    # (the project, profiles, profile and target come from the environment unless given here)
    given = ("--project-dir", "--profiles-dir", "--profile", "--target")
    if key != _parse_key(vars_json, env) or any(a in args for a in given):
        return None
    _preparsed = None
    return manifest


def _release_adapters(collect: bool = True) -> None:
    """Drop dbt's adapters, and with them dbt-duckdb's DuckDB handle, which would otherwise
    live on until the next command: this process can then open the warehouse again (DuckDB
    refuses a read-only connection beside a read-write one in the same process).

    ``collect``: then run a full garbage collection, for a command that failed or was
    interrupted (its exception's traceback could hold dbt's cursors in a reference cycle).
    A successful command's handles go with their last reference: with the collector off,
    the warehouse of either kind opens at once after a build (``tests/test_dbt_in_process.py``),
    and a full collection walks every object of the process, 0.1-0.3 s a command in the CLI
    or a test worker."""
    from dbt.adapters.factory import reset_adapters

    reset_adapters()
    # dbt-duckdb keeps its DuckDB environment for the life of the process (it closes it at
    # exit): close it now.
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        pass
    else:
        with DuckDBConnectionManager._LOCK:
            environment, DuckDBConnectionManager._ENV = DuckDBConnectionManager._ENV, None
        if environment is not None:
            environment.close()
    if collect:
        gc.collect()


def _error_event(exc: BaseException) -> dict[str, Any]:
    """An error event in dbt's JSON log format, for a failure outside dbt's own handling."""
    return {
        "info": {
            "name": "MainEncounteredError",
            "level": "error",
            "msg": f"dbt failed in process: {type(exc).__name__}: {exc}",
            "ts": "",
            "invocation_id": "",
        },
        "data": {"exc": str(exc)},
    }


@functools.cache
def invocation_class() -> type:
    """dagster-dbt's ``DbtCliInvocation`` with its command run in this process
    (:class:`InProcessDbt`) instead of a child; everything after the start (streaming the
    events, the artifacts, the errors) is dagster-dbt's own."""
    import shutil

    from dagster_dbt.core.dbt_cli_invocation import (
        PARTIAL_PARSE_FILE_NAME,
        DbtCliInvocation,
        _get_dbt_target_path,
    )

    class InProcessDbtCliInvocation(DbtCliInvocation):
        @classmethod
        def run(  # type: ignore[override]
            cls,
            args: Sequence[str],
            env: dict[str, str],
            manifest: Mapping[str, Any],
            dagster_dbt_translator: Any,
            project_dir: Path,
            target_path: Path,
            raise_on_error: bool,
            context: Any,
            adapter: Any,
            cli_version: Any,
            dbt_project: Any = None,
        ) -> DbtCliInvocation:
            # As dagster-dbt does for its child: start from the project's saved parse, if the
            # new target folder has none.
            current = _get_dbt_target_path()
            saved = (
                current if current.is_absolute() else project_dir / current
            ) / PARTIAL_PARSE_FILE_NAME
            primed = target_path / PARTIAL_PARSE_FILE_NAME
            if saved.exists() and not primed.exists():
                primed.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(saved, primed)
            return cls(
                process=InProcessDbt(args, env, project_dir),  # type: ignore[arg-type]
                manifest=manifest,
                project=dbt_project,
                dagster_dbt_translator=dagster_dbt_translator,
                project_dir=project_dir,
                target_path=target_path,
                raise_on_error=raise_on_error,
                context=context,
                adapter=adapter,
                cli_version=cli_version,
            )

    return InProcessDbtCliInvocation
