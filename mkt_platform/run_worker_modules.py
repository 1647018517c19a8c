"""Imported by the code server's forkserver (:mod:`mkt_platform.code_server`) before it forks
any run: what a run of any job imports, so that no run imports it again.

Importing reads no setting and opens nothing (the definitions are functions, built by each
run from its environment): a run forked from here is the run a fresh interpreter would make.
"""

from __future__ import annotations

import importlib
import pkgutil

import dagster  # noqa: F401
import dagster_dbt  # noqa: F401
import dbt.adapters.duckdb
import dbt.adapters.duckdb.impl
import dbt.cli.main
import dbt.task.build  # noqa: F401
import duckdb  # noqa: F401
import httpx  # noqa: F401
import pyarrow.parquet  # noqa: F401

import mkt_platform.definitions
import mkt_platform.defs
import mkt_platform.lib

#: The packages whose every module is imported: the code location's defs folder (what
#: ``load_from_defs_folder`` imports) and the library it builds on.
PACKAGES = (mkt_platform.defs, mkt_platform.lib)

for package in PACKAGES:
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
