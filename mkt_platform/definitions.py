"""Root Dagster definitions: every domain under ``mkt_platform/defs``, loaded from the folder.

``dg.load_from_defs_folder`` imports every module under ``mkt_platform/defs`` and merges what
each defines: the ``@dg.definitions`` function of each domain (``defs/<domain>/definitions.py``:
a venue's client resource, the dbt marts, monitoring, automation) and of the registry of raw
datasets (``defs/registry.py``: every raw asset a venue declares in its ``datasets.py``).
They are functions so that they read the environment (``mkt_platform/settings.py``) when the
definitions are loaded: a test or the CLI changes a setting and calls
:func:`build_definitions` again.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block, back as it was after (no
    collection forced). The build imports the defs folder and creates some 100,000 objects
    that live as long as the process; meanwhile the collector would run its full collection,
    which walks every object of Dagster and dbt imported before, about twice: 0.1-0.2 s each
    here, for nothing to free. What the build leaves as garbage is freed by the collections
    after it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def build_definitions() -> dg.Definitions:
    """Every definition of the platform, built from the current environment."""
    with _collector_paused():
        return dg.Definitions.merge(
            dg.load_from_defs_folder(path_within_project=PROJECT_ROOT),
            # Runs execute in one process: every run is one asset (or one dbt invocation)
            # and its checks, so a process per step would only add start-up time (about 10 s
            # a step); runs go in parallel with each other instead, up to the run queue's
            # limit.
            dg.Definitions(executor=dg.in_process_executor),
        )


#: The definitions the code server's forkserver built before it forked the run this process
#: is (:func:`mkt_platform.run_worker_modules.prebuild`), from the server's environment: what
#: :func:`defs` returns there. ``None`` in every other process.
prebuilt: dg.Definitions | None = None


@dg.definitions
def defs() -> dg.Definitions:
    """The code location's definitions, built when Dagster loads it (``dg dev``, ``dagster api
    grpc -m mkt_platform.definitions``), not when this module is imported: the CLI and the
    benchmarks import :func:`build_definitions` after setting their environment and build
    once. In a run forked by ``mkt-platform code-server``, the ones its forkserver built."""
    return prebuilt if prebuilt is not None else build_definitions()
