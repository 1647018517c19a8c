"""A dbt-duckdb plugin that loads the platform's DuckDB extensions from their packages
(:mod:`mkt_platform.lib.duckdb_extensions`) on every connection dbt opens, before dbt-duckdb
attaches the profile's databases: so a DuckLake warehouse (``ducklake:`` attach) works
offline, and nothing dbt runs downloads an extension.

Named in ``dbt_project/profiles.yml`` (``plugins: [{module: ...}]``); dbt-duckdb calls
:meth:`Plugin.configure_connection` once per connection.
"""

from __future__ import annotations

from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb import DuckDBPyConnection

from mkt_platform import warehouse
from mkt_platform.lib.duckdb_extensions import load_offline


class Plugin(BasePlugin):
    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        load_offline(conn, warehouse.extensions())
