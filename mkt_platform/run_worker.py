"""The code server's forkserver imports this module before it forks any run
(:data:`mkt_platform.code_server.PRELOAD`), and nothing else should: importing it makes every
run this one forks (each ``multiprocessing`` process) die with it, imports what runs import
and builds the code location's definitions from the environment
(:mod:`mkt_platform.run_worker_modules`)."""

from __future__ import annotations

from mkt_platform.run_worker_modules import die_with_this_process, prebuild, preload

# First: a run forked from here must die with the forkserver even when the rest fails.
die_with_this_process()
if preload():
    prebuild()
