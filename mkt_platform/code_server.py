"""The code location's gRPC server (``mkt-platform code-server``), its runs forked from a
process that has already imported the platform.

``dagster api grpc`` starts each run in a fresh interpreter (``multiprocessing``'s "spawn"):
every run pays the imports of Dagster, dagster-dbt, dbt, DuckDB and the project, about 3-4
CPU-s on this machine, before its first step; the default schedules start about 20 runs an
hour. This server is ``dagster api grpc``, with the same options, except that a run's process
is forked from a Python forkserver (``multiprocessing``'s "forkserver") that imported
:data:`PRELOAD` once, and with it the platform's modules and the code location's definitions
(:mod:`mkt_platform.run_worker_modules`), built from the server's environment and code as the
server built its own when it started (``dagster api grpc`` does not reload its code): the
run opens the instance itself, as under "spawn".

The forkserver is started with the server, from the server's environment, and holds no
thread, connection or open file of the server (it is a fresh interpreter that only imports
and builds definitions, and its resource tracker, see :mod:`mkt_platform.run_worker_modules`);
when it dies, the next run starts a new one (``multiprocessing``
checks it at each start), and the runs in flight die with it (the server
learns a run's end from the forkserver, and fails the runs it can no longer see; run_retries
launches them again). Killing the server's process group stops it and the runs with it, as
it stops spawned runs.

Only the default run launcher starts runs in the code server; with the Kubernetes run
launcher each run is a pod and this changes nothing.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
import sys

#: What the forkserver imports before it forks any run: the module that imports what a run of
#: any job imports (Dagster and its dbt integration, dbt's runner and DuckDB adapter, DuckDB,
#: pyarrow, httpx, every module of the code location's defs folder) and builds the definitions.
PRELOAD = ("mkt_platform.run_worker",)


def run_worker_context() -> multiprocessing.context.ForkServerContext:
    """The ``multiprocessing`` context runs are started in: "forkserver", with
    :data:`PRELOAD` imported by the server before it forks a run."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    return context


def main(argv: list[str] | None = None) -> int:
    """``dagster api grpc`` with ``argv`` (``--module-name mkt_platform.definitions``, the
    port and host from ``DAGSTER_GRPC_*``), runs forked by :func:`run_worker_context`.

    Dagster's server creates its ``spawn`` context in its constructor
    (``DagsterApiServer._mp_ctx``, used only to start runs): a subclass replaces it after the
    constructor, and ``dagster api grpc`` builds the subclass (it imports the class from its
    module when it is called). ``tests/test_code_server.py`` holds Dagster to that.
    """
    from multiprocessing import forkserver

    from dagster._cli.api import grpc_command
    from dagster._grpc import server

    from mkt_platform.run_worker_modules import SERVER_PID_ENV

    class ForkingApiServer(server.DagsterApiServer):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._mp_ctx = run_worker_context()
            # The forkserver's preparation ends when this process does (it learns which
            # process that is from here: see run_worker_modules.ended_with_the_server).
            os.environ[SERVER_PID_ENV] = str(os.getpid())
            # Started now, so that its imports are done before the first run is launched.
            forkserver.ensure_running()

    server.DagsterApiServer = ForkingApiServer
    grpc_command.main(args=argv, prog_name="mkt-platform code-server", standalone_mode=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
