"""What the code server's forkserver does before it forks any run (:mod:`mkt_platform.run_worker`
calls it, :mod:`mkt_platform.code_server` names that module): import what a run of any job
imports, so that no run imports it again, build the code location's definitions once, so
that no run builds them again, and parse the dbt project once, so that no run's dbt parses it
again. Importing this module does none of it.

The imports read no setting and open nothing. The definitions are built from the forkserver's
environment, which is the server's, from the same code and files (the dbt manifest, the
calendar seed): a build equal to the one the server made when it started and serves until
it stops (a server of ``dagster api grpc`` does not reload its code: its ``ReloadCode`` only
logs that it cannot; ``ReloadCodeWithState`` swaps state-backed components, which this code
location has none of). A run forked from here runs those, as a run in a fresh interpreter
would build them from unchanged files, without building them again. A forkserver that died
is started again by the next run and builds them anew, from the files as they are then.

The dbt parse is dbt's own (``dbt parse`` in process), from the same files and environment
again, and starts from the saved parse of the data directory or the project: it reads those
and writes only into a temporary folder, removed after; it opens no warehouse connection. Its
manifest goes to each run's first dbt command (see
:func:`mkt_platform.lib.dbt_in_process.preparse`).

Building them makes dbt's manifest create a ``multiprocessing`` lock, which starts the
forkserver's own resource tracker (a child process, idle); the runs use the server's.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import multiprocessing.util
import os
import pkgutil
import signal
import sys
import threading
from collections.abc import Iterator

#: What a run imports beyond the package's own modules. Found by comparing ``sys.modules``
#: before and after a forked run of each kind (a raw pull with snapshots, a session rebuild,
#: the options day): Dagster's run worker and storage, dbt's runner and DuckDB adapter, and
#: what Dagster, dbt and the charts import lazily while a run executes.
MODULES = (
    "dagster",
    "dagster._grpc.impl",  # the run worker's entry (start_run_in_subprocess)
    "dagster._core.execution.api",
    "dagster._core.execution.execute_in_process",
    "dagster._core.execution.plan.active",
    "dagster._core.executor.in_process",
    "dagster._core.instance.factory",
    "dagster._core.instance.runs.run_domain",
    "dagster._core.secrets.env_file",
    "dagster._core.storage.legacy_storage",
    "dagster._core.storage.local_compute_log_manager",
    "dagster._core.storage.root",
    "dagster._core.storage.runs.sqlite.sqlite_run_storage",
    "dagster._core.storage.schedules.sqlite.sqlite_schedule_storage",
    "dagster_postgres",  # the deployment's instance
    "dagster_dbt",
    "dbt.cli.main",
    "dbt.task.build",
    "dbt.adapters.duckdb.impl",
    "dbt.adapters.duckdb.environments.local",
    "dbt_common.clients.agate_helper",
    "duckdb",
    "httpx",
    "httpcore",
    "matplotlib.backends.backend_agg",
    "matplotlib.dates",
    "matplotlib.figure",
    "pandas",
    "pyarrow.dataset",
    "pyarrow.parquet",
    "tomlkit",
    "upath",
    "mkt_platform.definitions",
)

#: The packages whose every module is imported: the code location's defs folder (what
#: ``load_from_defs_folder`` imports) and the library it builds on.
PACKAGES = ("mkt_platform.defs", "mkt_platform.lib")

#: dbt validates its project, flags, profile credentials and test results against JSON
#: schemas it builds from their classes on first use (cached per class, about 0.4 CPU-s).
DBT_CONTRACTS = (
    "dbt.contracts.project.Project",
    "dbt.contracts.project.ProjectFlags",
    "dbt.contracts.project.PackageConfig",
    "dbt.adapters.duckdb.credentials.DuckDBCredentials",
    "dbt.task.test.TestResultData",
)


def preload(
    modules: tuple[str, ...] = MODULES,
    packages: tuple[str, ...] = PACKAGES,
    contracts: tuple[str, ...] = DBT_CONTRACTS,
) -> bool:
    """Import ``modules`` and every module of ``packages``, and build the JSON schemas of
    dbt's ``contracts``; whether all of it succeeded. A failure is written to stderr (the
    code server's log) and goes no further: the runs import what is missing themselves,
    slower. (Python's forkserver ignores only an ImportError from its preload: any other
    error would kill it at each start, and no run would start.)"""
    try:
        for name in modules:
            importlib.import_module(name)
        for package_name in packages:
            package = importlib.import_module(package_name)
            for module in pkgutil.walk_packages(package.__path__, package_name + "."):
                importlib.import_module(module.name)
        for contract in contracts:
            module_name, _, class_name = contract.rpartition(".")
            getattr(importlib.import_module(module_name), class_name).json_schema()
    except Exception as exc:  # any failure only makes the runs slower
        _report("preloading the runs' modules", exc, "each run imports what it needs itself")
        return False
    return True


def _report(what: str, exc: Exception, instead: str) -> None:
    """Write a failure of the forkserver's preparation to stderr (the code server's log)."""
    print(
        f"mkt-platform code-server: {what} failed ({type(exc).__name__}: {exc}); {instead}",
        file=sys.stderr,
        flush=True,
    )


#: Linux's prctl option: the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1


class _RunWorker:
    """Holds the after-fork hook (``multiprocessing`` keeps hooks by a weak reference) and
    the pid of the process that forks (the forkserver, or a run that forks in turn)."""

    forkserver: int | None = None

    @staticmethod
    def die_with_the_forkserver(owner: _RunWorker) -> None:
        """In each forked run: be killed when the forkserver dies. The server learns a run's
        process has ended from the forkserver; once it is gone the server takes the run for
        dead and fails it (run_retries launches it again), so the run must not go on. A
        forkserver that died between the fork and this request sends nothing: then the run
        ends here, with 137 (as if killed)."""
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if owner.forkserver is not None and os.getppid() != owner.forkserver:
            os._exit(137)
        # A process this one forks in turn (it inherits the hook) dies with this one.
        owner.forkserver = os.getpid()


_HOOK = _RunWorker()


def die_with_this_process() -> None:
    """Make every process ``multiprocessing`` forks from this one die when this one dies
    (:meth:`_RunWorker.die_with_the_forkserver`, run in the child after the fork)."""
    _HOOK.forkserver = os.getpid()
    multiprocessing.util.register_after_fork(_HOOK, _RunWorker.die_with_the_forkserver)


#: The environment variable naming the pid of the code server, for its forkserver.
SERVER_PID_ENV = "MKT_CODE_SERVER_PID"


@contextlib.contextmanager
def ended_with_the_server(interval: float = 0.1) -> Iterator[None]:
    """While the body runs (the forkserver's preparation), end this process as soon as its
    parent, the code server, is gone (``os.getppid()`` changes: it was adopted).

    Python's forkserver learns that its server has gone from a pipe, but only once its
    preload is done and it waits for runs: a server stopped while the forkserver still
    imports, builds the definitions and parses dbt (10-20 s on a loaded machine) would leave
    it working on for nobody. A thread watches the parent, polling every ``interval``
    seconds, and is joined when the body ends, so that the forkserver holds one thread again
    before it forks any run.

    The parent is the process named by ``MKT_CODE_SERVER_PID``, which the code server sets
    before it starts its forkserver (:func:`mkt_platform.code_server.main`), else this
    process's parent when it starts: a server stopped as the forkserver started would
    otherwise leave it adopted by another process from its first instruction, and watched
    for nothing."""
    parent = int(os.environ.get(SERVER_PID_ENV) or os.getppid())
    done = threading.Event()

    def watch() -> None:
        while not done.wait(interval):
            if os.getppid() != parent:
                with contextlib.suppress(OSError, ValueError):
                    print(
                        "mkt-platform code-server: the server stopped while the forkserver "
                        "was preparing; it stops too",
                        file=sys.stderr,
                        flush=True,
                    )
                os._exit(0)

    watcher = threading.Thread(target=watch, name="mkt-platform-forkserver-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def prebuild() -> bool:
    """Build the code location's definitions (:func:`mkt_platform.definitions.build_definitions`,
    from this process's environment) and resolve their jobs, then hand them to every run forked
    from here (:data:`mkt_platform.definitions.prebuilt`: what ``defs`` returns); whether it
    succeeded. A failure is written to stderr and goes no further: each run then builds its
    own, and fails there with the error of its own build (a run of a server whose settings are
    broken fails as before; the server itself does not load)."""
    try:
        from mkt_platform import definitions

        built = definitions.build_definitions()
        built.get_repository_def().get_all_jobs()
    except Exception as exc:  # the runs build them themselves
        _report("building the definitions for the runs", exc, "each run builds its own")
        return False
    definitions.prebuilt = built
    return True


def preparse() -> bool:
    """Parse the dbt project for the runs forked from here
    (:func:`mkt_platform.lib.dbt_in_process.preparse`); whether it succeeded. A failure is
    written to stderr and goes no further: each run's dbt parses the project itself."""
    try:
        from mkt_platform.lib.dbt_in_process import preparse as parse

        parse()
    except Exception as exc:  # the runs parse it themselves
        _report("parsing the dbt project for the runs", exc, "each run's dbt parses it")
        return False
    return True
