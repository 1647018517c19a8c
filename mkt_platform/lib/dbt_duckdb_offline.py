"""A dbt-duckdb plugin that prepares every connection dbt opens, before dbt-duckdb attaches
the profile's databases:

* a DuckLake warehouse: loads its DuckDB extensions from their packages
  (:mod:`mkt_platform.lib.duckdb_extensions`), so that the ``ducklake:`` attach works offline
  and nothing dbt runs downloads an extension; and creates the secret the profile's attach
  names (:func:`mkt_platform.warehouse.secret_sql`: the catalog and data path from the
  environment, so the profile itself holds no path);
* a DuckDB-file warehouse: attaches ``$MKT_DATA_DIR/warehouse.duckdb`` as ``warehouse``
  (:func:`mkt_platform.warehouse.file_attach_sql`), so that the profile holds no path either;
* the raw lake's root, as the DuckDB variable ``mkt_lake``
  (:func:`mkt_platform.warehouse.set_lake_variable`), which the sources'
  ``external_location`` and ``macros/lake.sql`` read: the project itself reads no
  environment variable while dbt parses, so one saved parse serves every data directory;
* a lake or DuckLake data files on S3: loads ``httpfs`` the same way and creates the S3
  secret from the environment (:func:`mkt_platform.lib.s3.configure_duckdb`), so the staging
  models read ``s3://`` and DuckLake writes there. The secret never appears in dbt's SQL log.

Every DuckDB database dbt-duckdb opens gets the platform's connection settings
(:func:`mkt_platform.lib.duckdb_extensions.connection_config`), through
:meth:`Plugin.update_connection_config`, which dbt-duckdb calls before it connects.

Named in ``dbt_project/profiles.yml`` (``plugins: [{module: ...}]``); dbt-duckdb calls
:meth:`Plugin.configure_connection` once per connection and :meth:`Plugin.configure_cursor`
on each cursor it runs SQL on.
"""

from __future__ import annotations

import os
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin
from dbt_common.exceptions import DbtRuntimeError
from duckdb import DuckDBPyConnection

from mkt_platform import warehouse
from mkt_platform.lib import s3
from mkt_platform.lib.duckdb_extensions import connection_config, load_offline


class Plugin(BasePlugin):
    def update_connection_config(self, creds: Any, config: dict[str, Any]) -> None:
        # Before dbt-duckdb opens its database: the settings of every platform connection
        # (extensions loaded only from their packages, see lib/duckdb_extensions.py).
        config.update(connection_config())

    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        if not os.environ.get("MKT_DATA_DIR"):
            # The warehouse's and the lake's paths come from it (Dagster sets it, absolute,
            # before it runs dbt); guessed, dbt by hand could read one folder and write another.
            raise DbtRuntimeError(
                "MKT_DATA_DIR is not set: dbt's warehouse and the raw lake are found from it; "
                "set it to the data directory (from dbt_project/: MKT_DATA_DIR=$PWD/../data)"
            )
        if warehouse.kind() == "ducklake":
            load_offline(conn, warehouse.extensions())
            conn.execute(warehouse.secret_sql())
        else:
            conn.execute(warehouse.file_attach_sql())
        s3.configure_duckdb(conn)
        warehouse.set_lake_variable(conn)

    def configure_cursor(self, cursor) -> None:
        # A DuckDB variable belongs to one connection, and dbt runs its SQL on cursors.
        warehouse.set_lake_variable(cursor)
