"""S3-compatible object storage, for the raw lake (``MKT_LAKE_URL=s3://bucket/prefix``) and a
DuckLake warehouse's data files (``MKT_DUCKLAKE_DATA_PATH=s3://bucket/prefix/``).

Two clients read and write it, both configured from :func:`mkt_platform.settings.s3_settings`
(the AWS SDKs' environment names, so nothing about the store is in the repository):

* Python (the raw assets' writes and reads) through pyarrow's own S3 file system
  (:func:`filesystem`);
* DuckDB (dbt's staging models, the warehouse's readers, DuckLake) through its ``httpfs``
  extension, loaded from its package (never downloaded), with an S3 secret made from the same
  settings (:func:`configure_duckdb`). The secret lives in the connection's memory only: it is
  never written to disk, a log or the warehouse.
"""

from __future__ import annotations

import functools

import duckdb
import pyarrow.fs as pafs

from mkt_platform import settings
from mkt_platform.lib.duckdb_extensions import load_offline


def in_use() -> bool:
    """Whether anything the platform reads or writes is on S3: the lake, or a DuckLake
    warehouse's data files."""
    return settings.lake_url() is not None or (
        settings.warehouse_kind() == "ducklake"
        and settings.ducklake_data_path().startswith("s3://")
    )


@functools.lru_cache(maxsize=4)
def _filesystem(config: settings.S3Settings) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(
        access_key=config.key_id,
        secret_key=config.secret,
        session_token=config.session_token,
        region=config.region,
        endpoint_override=config.endpoint,
        scheme="https" if config.use_ssl else "http",
        # Path-style URLs (http://host/bucket/key) for an S3-compatible server; AWS itself
        # takes virtual-host style.
        force_virtual_addressing=config.endpoint is None,
        # Retries of a dropped connection or a 5xx, inside pyarrow (its AWS SDK's standard
        # strategy), before an error reaches the asset (whose own retry policy then applies).
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=5),
        connect_timeout=10,
        request_timeout=60,
    )


def filesystem() -> pafs.S3FileSystem:
    """pyarrow's S3 file system for the configured store (one per settings, reused).

    Paths on it are ``bucket/key`` (no scheme).

    Raises:
        mkt_platform.settings.SettingError: a malformed endpoint or half the credentials.
    """
    return _filesystem(settings.s3_settings())


def sql_string(text: str) -> str:
    """``text`` as a DuckDB string literal (single quotes doubled)."""
    return "'" + text.replace("'", "''") + "'"


def configure_duckdb(con: duckdb.DuckDBPyConnection) -> None:
    """Load ``httpfs`` (from its package) into ``con`` and create the S3 secret DuckDB reads
    ``s3://`` URLs with; a no-op when :func:`in_use` is false, so that a local deployment
    never loads it.

    The secret is a temporary one (the connection's memory): DuckDB never persists it.

    Raises:
        mkt_platform.settings.SettingError: a malformed endpoint or half the credentials.
        mkt_platform.lib.duckdb_extensions.ExtensionUnavailableError: httpfs's package is
            missing.
    """
    if not in_use():
        return
    config = settings.s3_settings()
    load_offline(con, ["httpfs"])
    options = [
        "TYPE s3",
        f"REGION {sql_string(config.region)}",
        f"USE_SSL {'true' if config.use_ssl else 'false'}",
    ]
    if config.endpoint is not None:
        options += [f"ENDPOINT {sql_string(config.endpoint)}", "URL_STYLE 'path'"]
    if config.key_id is not None and config.secret is not None:
        options += [f"KEY_ID {sql_string(config.key_id)}", f"SECRET {sql_string(config.secret)}"]
    if config.session_token is not None:
        options.append(f"SESSION_TOKEN {sql_string(config.session_token)}")
    con.execute(f"CREATE OR REPLACE TEMPORARY SECRET mkt_s3 ({', '.join(options)})")
