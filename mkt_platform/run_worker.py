"""The code server's forkserver imports this module before it forks any run
(:data:`mkt_platform.code_server.PRELOAD`), and nothing else should: importing it makes every
run this one forks (each ``multiprocessing`` process) die with it, imports what runs import,
builds the code location's definitions from the environment and parses the dbt project for
the runs' first dbt command (:mod:`mkt_platform.run_worker_modules`), then freezes all of it
(``gc.freeze``, as Python's documentation advises before forking): about 470,000 objects
that a full collection in a run would otherwise walk, 0.26-0.30 s each time (dbt's command
ends with one, to release its DuckDB handles)."""

from __future__ import annotations

import gc

from mkt_platform.run_worker_modules import (
    die_with_this_process,
    ended_with_the_server,
    prebuild,
    preload,
    preparse,
)

# First: a run forked from here must die with the forkserver even when the rest fails.
die_with_this_process()
# The preparation takes seconds: a server stopped meanwhile must not leave it running.
with ended_with_the_server():
    if preload():
        if prebuild():
            preparse()
        # What was imported and built here lives as long as the runs: out of the collector's
        # reach, so that a run's collections do not walk it (nor write to its pages).
        gc.freeze()
