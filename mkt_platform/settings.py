"""Every setting of the platform, read from the environment in this one module.

Dagster partitions, resources and the dbt invocation all take their values from here, so
that a setting (the session anchor hour above all) cannot mean one thing to Dagster and
another to dbt.

| env var                   | default                     | meaning                               |
|---------------------------|-----------------------------|---------------------------------------|
| MKT_DATA_DIR              | ./data                      | lake (Parquet) and the warehouse      |
| MKT_WAREHOUSE             | ducklake                    | the warehouse: ducklake or duckdb     |
| MKT_SESSION_ANCHOR_HOUR   | 8                           | UTC hour a daily session starts at    |
| MKT_WEEKLY_SESSION_WEEKDAY | FRI                        | weekday weekly/monthly sessions start |
| MKT_PARTITIONS_START      | 2022-01-01                  | first daily partition (UTC date)      |
| MKT_GAP_REPAIR_LOOKBACK_DAYS | 7                        | closed days the gap repair re-checks  |
| MKT_AUTOMATION_LOOKBACK_DAYS | 3                        | days back automation refreshes marts  |
| MKT_LATE_DATA_LOOKBACK_DAYS | 3                         | closed days late-data sensor re-pulls |
| MKT_ALERT_WEBHOOK_URL     | (unset: log only)           | JSON POST target of alerts (a secret) |
| MKT_DBT_DOCS_URL          | http://127.0.0.1:8080       | dbt docs site the dbt assets link to  |
| MKT_INSTRUMENTS_FILE      | mkt_platform/instruments.yaml | the instrument universe (YAML)      |
| MKT_ALLOW_UNIVERSE_SHRINK | 0                           | 1: re-pulls may drop instruments      |
| MKT_POOL_WAIT_SECONDS     | 900                         | CLI's wait for the warehouse pool     |
| MKT_WAREHOUSE_LOCK_WAIT_SECONDS | 300                   | dbt's wait for another DuckDB holder  |
| BINANCE_BASE_URL          | https://api.binance.com     | Binance spot REST API                 |
| HYPERLIQUID_BASE_URL      | https://api.hyperliquid.xyz | Hyperliquid info API (POST /info)     |
| DERIBIT_BASE_URL          | https://www.deribit.com     | Deribit API (the last day)            |
| DERIBIT_HISTORY_BASE_URL  | https://history.deribit.com | Deribit history API (older days)      |
| MKT_DUCKLAKE_CATALOG      | sqlite:$MKT_DATA_DIR/warehouse.sqlite | DuckLake catalog |
| MKT_DUCKLAKE_DATA_PATH    | $MKT_DATA_DIR/warehouse_files | DuckLake's Parquet files (or s3://) |
| MKT_DUCKLAKE_RETENTION_DAYS | 7                         | DuckLake snapshots kept (time travel) |
| MKT_DUCKDB_VERIFY_EXTENSIONS | 0                      | 1: DuckDB checks extension signatures |
| MKT_DBT_IN_PROCESS        | 1                           | 0: dbt in a child process (mkt-dbt)   |
| MKT_CHARTS                | 1                           | 0: no charts on mart materializations |
| MKT_BINANCE_ORDER_BOOK_LEVELS | 100                   | levels a side, Binance book snapshots |
| MKT_BINANCE_RECENT_TRADES | 500                         | trades a symbol, trade snapshots      |
| MKT_CAPTURE_HYPERLIQUID_URL | wss://api.hyperliquid.xyz/ws | capture: Hyperliquid WebSocket API |
| MKT_CAPTURE_BINANCE_LIQUIDATIONS_URL | (Binance's !forceOrder@arr) | capture: liquidations |
| MKT_LAKE_URL              | (unset: $MKT_DATA_DIR/lake) | the raw lake on S3: s3://bucket/prefix |
| AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL | (unset: AWS) | an S3-compatible server (MinIO...)   |
| AWS_REGION or AWS_DEFAULT_REGION | us-east-1            | the bucket's region                   |
| AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN | (unset) | S3 credentials (secrets) |
| MKT_API_TOKEN             | (unset: no token asked)     | read API's bearer token (a secret)    |
| MKT_API_HOST              | 127.0.0.1                   | address the read API listens on       |
| MKT_API_PORT              | 8000                        | port the read API listens on          |
| DAGSTER_EVENT_BATCH_SIZE  | 1000 (set by the CLI)       | Dagster's batched event writes        |
| POLYGON_BASE_URL          | https://api.polygon.io      | Polygon REST API                      |
| POLYGON_API_KEY           | (unset: Polygon runs fail)  | Polygon API key (a secret)            |
| MKT_POLYGON_OPTIONS_BAND_PCT | 1                        | SPY options: strikes within ±% of open |
| MKT_POLYGON_OPTIONS_EXPIRY_DAYS | 7                     | ... expiring within these days        |
| MKT_POLYGON_OPTIONS_MAX_CONTRACTS | 100                 | ... at most this many, nearest first  |
| MKT_POLYGON_LATE_DATA     | reject                      | changed bars of a closed trading day  |
| MKT_SLOW_WRITE_SECONDS    | 300                         | alert when a partition write is slower |
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_SESSION_ANCHOR_HOUR = 8
DEFAULT_PARTITIONS_START = "2022-01-01"
DEFAULT_WEEKLY_SESSION_WEEKDAY = "FRI"
#: Weekday names accepted by MKT_WEEKLY_SESSION_WEEKDAY, in ISO order (MON = 1).
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
DEFAULT_GAP_REPAIR_LOOKBACK_DAYS = 7
DEFAULT_AUTOMATION_LOOKBACK_DAYS = 3
DEFAULT_LATE_DATA_LOOKBACK_DAYS = 3
DEFAULT_BINANCE_BASE_URL = "https://api.binance.com"
DEFAULT_HYPERLIQUID_BASE_URL = "https://api.hyperliquid.xyz"
DEFAULT_DERIBIT_BASE_URL = "https://www.deribit.com"
DEFAULT_DERIBIT_HISTORY_BASE_URL = "https://history.deribit.com"
DEFAULT_POLYGON_BASE_URL = "https://api.polygon.io"
DEFAULT_DBT_DOCS_URL = "http://127.0.0.1:8080"
#: The dbt project (models, their descriptions and tests), beside the package.
DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
#: The shortest bearer token the read API accepts (``MKT_API_TOKEN``).
API_TOKEN_MIN_LENGTH = 16


class SettingError(ValueError):
    """An environment setting has a value the platform cannot use."""


def data_dir() -> Path:
    """Absolute path of the data directory (env ``MKT_DATA_DIR``, default ``./data``)."""
    return Path(os.environ.get("MKT_DATA_DIR", "./data")).expanduser().resolve()


def lake_dir() -> Path:
    """Root of the Parquet lake: ``$MKT_DATA_DIR/lake``."""
    return data_dir() / "lake"


def lake_url() -> str | None:
    """Where the raw lake is when it is on S3-compatible object storage (env ``MKT_LAKE_URL``,
    ``s3://bucket`` or ``s3://bucket/prefix``), without a trailing ``/``; ``None`` (the
    default) for local files under :func:`lake_dir`. The server and the credentials are
    :func:`s3_settings`.

    Raises:
        SettingError: not an ``s3://`` URL with a bucket, or one with a query, a fragment or
            user information (credentials belong in the environment, never in the URL).
    """
    raw = os.environ.get("MKT_LAKE_URL", "").strip()
    if not raw:
        return None
    url = urlsplit(raw)
    if url.scheme != "s3" or not url.hostname or url.query or url.fragment or "@" in url.netloc:
        # The value itself is not shown: a URL with user information may hold a secret.
        raise SettingError(
            "MKT_LAKE_URL must be s3://bucket or s3://bucket/prefix, with no user, query or "
            f"fragment (unset for local files under MKT_DATA_DIR); got a {url.scheme or 'bare'}"
            " value"
        )
    return f"s3://{url.netloc}{url.path}".rstrip("/")


@dataclass(frozen=True)
class S3Settings:
    """How to reach S3-compatible object storage, from the AWS SDKs' own environment names
    (so that the aws CLI, boto3 and this platform agree). The secret is not in the ``repr``.

    Attributes:
        endpoint: ``host[:port]`` of an S3-compatible server (MinIO, Ceph, a test's moto), or
            ``None`` for AWS itself (virtual-host style URLs).
        use_ssl: whether the endpoint is ``https``.
        region: the bucket's region.
        key_id, secret, session_token: the credentials, or ``None`` each.
    """

    endpoint: str | None
    use_ssl: bool
    region: str
    key_id: str | None
    secret: str | None = field(repr=False)
    session_token: str | None = field(repr=False)


def s3_settings() -> S3Settings:
    """The S3 server and credentials (env ``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL``:
    ``http(s)://host[:port]``; ``AWS_REGION``, else ``AWS_DEFAULT_REGION``, default
    ``us-east-1``; ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``).

    Raises:
        SettingError: an endpoint that is not an http(s) URL of a host (the message never
            shows a credential), or only one of the key id and the secret.
    """
    env = os.environ
    raw = (env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or "").strip()
    endpoint, use_ssl = None, True
    if raw:
        url = urlsplit(raw)
        if url.scheme not in ("http", "https") or not url.hostname or "@" in url.netloc:
            raise SettingError(
                "AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL must be http(s)://host[:port] with no "
                f"user; got a {url.scheme or 'bare'} value"
            )
        endpoint, use_ssl = url.netloc, url.scheme == "https"
    key_id = env.get("AWS_ACCESS_KEY_ID") or None
    secret = env.get("AWS_SECRET_ACCESS_KEY") or None
    if (key_id is None) != (secret is None):
        raise SettingError(
            "S3 credentials: set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither"
        )
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    return S3Settings(
        endpoint, use_ssl, region.strip(), key_id, secret, env.get("AWS_SESSION_TOKEN") or None
    )


def warehouse_path() -> Path:
    """The DuckDB warehouse file, written only by dbt: ``$MKT_DATA_DIR/warehouse.duckdb``."""
    return data_dir() / "warehouse.duckdb"


#: The kinds of warehouse (see :mod:`mkt_platform.warehouse`).
WAREHOUSE_KINDS = ("duckdb", "ducklake")


def warehouse_kind() -> str:
    """The kind of warehouse dbt builds and readers open (env ``MKT_WAREHOUSE``, default
    ``ducklake``): ``ducklake``, a DuckLake with its catalog in a SQLite file (or PostgreSQL),
    which readers can hold open while dbt writes; ``duckdb``, one DuckDB file, which a reader
    left open keeps dbt from writing.

    Raises:
        SettingError: another value.
    """
    raw = os.environ.get("MKT_WAREHOUSE", "ducklake").strip() or "ducklake"
    if raw not in WAREHOUSE_KINDS:
        raise SettingError(
            f"MKT_WAREHOUSE must be one of {', '.join(WAREHOUSE_KINDS)}, got {raw!r}"
        )
    return raw


def ducklake_catalog() -> str:
    """Where a DuckLake warehouse keeps its catalog, as DuckLake spells it after ``ducklake:``
    (env ``MKT_DUCKLAKE_CATALOG``): ``sqlite:<file>`` (default
    ``sqlite:$MKT_DATA_DIR/warehouse.sqlite``) or ``postgres:<libpq conninfo>`` (for example
    ``postgres:host=postgres dbname=mkt_warehouse user=mkt``), whose password comes from
    libpq's own environment (``PGPASSWORD``), never from this setting.

    Raises:
        SettingError: another scheme, or a conninfo that holds a password.
    """
    raw = os.environ.get("MKT_DUCKLAKE_CATALOG", "").strip()
    if not raw:
        return f"sqlite:{data_dir() / 'warehouse.sqlite'}"
    scheme = raw.split(":", 1)[0]
    if scheme not in ("sqlite", "postgres") or ":" not in raw:
        raise SettingError(
            "MKT_DUCKLAKE_CATALOG must be sqlite:<file> or postgres:<conninfo>, got a value "
            f"starting {raw[:9]!r}"
        )
    if scheme == "postgres" and re.search(r"(^|[\s:])password\s*=", raw):
        raise SettingError(
            "MKT_DUCKLAKE_CATALOG holds a password: leave it out (the setting is shown in logs "
            "and run metadata) and give it to libpq as PGPASSWORD"
        )
    return raw


def ducklake_retention_days() -> int:
    """How many days of a DuckLake warehouse's history the daily maintenance keeps (env
    ``MKT_DUCKLAKE_RETENTION_DAYS``, default 7, 0 or more): older snapshots are expired, and
    the files only they needed are deleted once they have been unneeded that long.

    Raises:
        SettingError: not a whole number of days.
    """
    raw = os.environ.get("MKT_DUCKLAKE_RETENTION_DAYS", "").strip() or "7"
    if not raw.isdigit():
        raise SettingError(
            f"MKT_DUCKLAKE_RETENTION_DAYS must be a whole number of days, got {raw!r}"
        )
    return int(raw)


def ducklake_data_path() -> str:
    """Where a DuckLake warehouse keeps its tables' Parquet files (env
    ``MKT_DUCKLAKE_DATA_PATH``, default ``$MKT_DATA_DIR/warehouse_files``), ending in ``/``."""
    raw = os.environ.get("MKT_DUCKLAKE_DATA_PATH", "").strip()
    return (raw or str(data_dir() / "warehouse_files")).rstrip("/") + "/"


def session_anchor_hour() -> int:
    """UTC hour (0-23) at which daily sessions start (env ``MKT_SESSION_ANCHOR_HOUR``).

    The default, 8, is Deribit's daily option expiry (08:00 UTC).

    Raises:
        SettingError: the value is not an integer in 0..23.
    """
    raw = os.environ.get("MKT_SESSION_ANCHOR_HOUR", str(DEFAULT_SESSION_ANCHOR_HOUR))
    try:
        hour = int(raw)
    except ValueError:
        raise SettingError(
            f"MKT_SESSION_ANCHOR_HOUR must be an integer 0..23, got {raw!r}"
        ) from None
    if not 0 <= hour <= 23:
        raise SettingError(f"MKT_SESSION_ANCHOR_HOUR must be in 0..23, got {hour}")
    return hour


def weekly_session_weekday() -> int:
    """ISO weekday (1 = Monday .. 7 = Sunday) on which weekly sessions start, at the anchor
    hour (env ``MKT_WEEKLY_SESSION_WEEKDAY``: MON..SUN, default FRI, Deribit's weekly expiry).
    Monthly sessions run from the last such weekday of a month to the last of the next.

    Raises:
        SettingError: the value is not one of MON, TUE, WED, THU, FRI, SAT, SUN.
    """
    raw = os.environ.get("MKT_WEEKLY_SESSION_WEEKDAY", DEFAULT_WEEKLY_SESSION_WEEKDAY)
    name = raw.strip().upper()
    if name not in WEEKDAYS:
        raise SettingError(
            f"MKT_WEEKLY_SESSION_WEEKDAY must be one of {', '.join(WEEKDAYS)}, got {raw!r}"
        )
    return WEEKDAYS.index(name) + 1


def partitions_start() -> str:
    """First daily partition as ``YYYY-MM-DD`` (env ``MKT_PARTITIONS_START``).

    Raises:
        SettingError: the value is not an ISO date.
    """
    raw = os.environ.get("MKT_PARTITIONS_START", DEFAULT_PARTITIONS_START)
    try:
        return date.fromisoformat(raw).isoformat()
    except ValueError:
        raise SettingError(f"MKT_PARTITIONS_START must be YYYY-MM-DD, got {raw!r}") from None


def binance_base_url() -> str:
    """Base URL of the Binance spot REST API (env ``BINANCE_BASE_URL``)."""
    return os.environ.get("BINANCE_BASE_URL", DEFAULT_BINANCE_BASE_URL).rstrip("/")


def polygon_base_url() -> str:
    """Base URL of the Polygon REST API (env ``POLYGON_BASE_URL``)."""
    return os.environ.get("POLYGON_BASE_URL", DEFAULT_POLYGON_BASE_URL).rstrip("/")


def hyperliquid_base_url() -> str:
    """Base URL of the Hyperliquid info API (env ``HYPERLIQUID_BASE_URL``)."""
    return os.environ.get("HYPERLIQUID_BASE_URL", DEFAULT_HYPERLIQUID_BASE_URL).rstrip("/")


def deribit_base_url() -> str:
    """Base URL of the Deribit API for recent trades (env ``DERIBIT_BASE_URL``)."""
    return os.environ.get("DERIBIT_BASE_URL", DEFAULT_DERIBIT_BASE_URL).rstrip("/")


def deribit_history_base_url() -> str:
    """Base URL of the Deribit history API, for days older than one day
    (env ``DERIBIT_HISTORY_BASE_URL``)."""
    return os.environ.get("DERIBIT_HISTORY_BASE_URL", DEFAULT_DERIBIT_HISTORY_BASE_URL).rstrip("/")


def gap_repair_lookback_days() -> int:
    """How many closed UTC days the gap-repair schedule re-checks for missing candles
    (env ``MKT_GAP_REPAIR_LOOKBACK_DAYS``, default 7, as the replaced pipeline did).

    Raises:
        SettingError: the value is not a positive integer.
    """
    return _positive_int("MKT_GAP_REPAIR_LOOKBACK_DAYS", DEFAULT_GAP_REPAIR_LOOKBACK_DAYS)


def _positive_int(name: str, default: int, largest: int | None = None) -> int:
    """The whole number in env ``name`` (``default`` when unset or blank), at least 1 and at
    most ``largest``.

    Raises:
        SettingError: naming the variable, the range and the value.
    """
    raw = os.environ.get(name, "").strip() or str(default)
    if not raw.isdigit() or int(raw) < 1 or (largest is not None and int(raw) > largest):
        span = "a positive integer" if largest is None else f"a whole number in 1..{largest}"
        raise SettingError(f"{name} must be {span}, got {raw!r}")
    return int(raw)


def automation_lookback_days() -> int:
    """How far back (days before the latest partition) declarative automation refreshes a
    derived partition whose raw data changed (env ``MKT_AUTOMATION_LOOKBACK_DAYS``, default 3).

    Raises:
        SettingError: the value is not a positive integer.
    """
    return _positive_int("MKT_AUTOMATION_LOOKBACK_DAYS", DEFAULT_AUTOMATION_LOOKBACK_DAYS)


def late_data_lookback_days() -> int:
    """How many closed UTC days before today the late-data sensor re-pulls and compares
    (env ``MKT_LATE_DATA_LOOKBACK_DAYS``, default 3).

    Raises:
        SettingError: the value is not a positive integer.
    """
    return _positive_int("MKT_LATE_DATA_LOOKBACK_DAYS", DEFAULT_LATE_DATA_LOOKBACK_DAYS)


#: The variable holding the alert webhook's URL (a secret: read, never logged or stored).
ALERT_WEBHOOK_URL_ENV = "MKT_ALERT_WEBHOOK_URL"


def alert_webhook_url() -> str | None:
    """Where alerts are POSTed as JSON (env ``MKT_ALERT_WEBHOOK_URL``; unset or blank: alerts
    are only logged). The URL often embeds a token: treat it as a secret, never log it."""
    url = os.environ.get(ALERT_WEBHOOK_URL_ENV, "").strip()
    return url or None


def api_token() -> str | None:
    """The bearer token the read API asks of every data request (env ``MKT_API_TOKEN``), or
    ``None`` when unset or empty: then the API asks none, and listens on loopback by default.

    Raises:
        SettingError: a token shorter than :data:`API_TOKEN_MIN_LENGTH` characters (the
            message gives its length only, never the token).
    """
    raw = os.environ.get("MKT_API_TOKEN", "").strip()
    if not raw:
        return None
    if len(raw) < API_TOKEN_MIN_LENGTH:
        raise SettingError(
            f"MKT_API_TOKEN is {len(raw)} characters long: use at least "
            f"{API_TOKEN_MIN_LENGTH} (e.g. `python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'`)"
        )
    return raw


def api_host() -> str:
    """The address ``mkt-platform api`` listens on by default (env ``MKT_API_HOST``, default
    ``127.0.0.1``: loopback only)."""
    return os.environ.get("MKT_API_HOST", "").strip() or "127.0.0.1"


def api_port() -> int:
    """The port ``mkt-platform api`` listens on by default (env ``MKT_API_PORT``, 8000).

    Raises:
        SettingError: not a port number (1..65535).
    """
    raw = os.environ.get("MKT_API_PORT", "").strip() or "8000"
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise SettingError(f"MKT_API_PORT must be a port number (1..65535), got {raw!r}")
    return int(raw)


DEFAULT_BINANCE_ORDER_BOOK_LEVELS = 100


def binance_order_book_levels() -> int:
    """Levels a side of each Binance order-book snapshot (env ``MKT_BINANCE_ORDER_BOOK_LEVELS``,
    default 100; Binance serves 1 to 5000, and weighs a request of more than 100 levels more).

    Raises:
        SettingError: not a whole number in 1..5000.
    """
    return _positive_int("MKT_BINANCE_ORDER_BOOK_LEVELS", DEFAULT_BINANCE_ORDER_BOOK_LEVELS, 5000)


DEFAULT_BINANCE_RECENT_TRADES = 500


def binance_recent_trades() -> int:
    """Trades per symbol of each Binance recent-trades snapshot (env
    ``MKT_BINANCE_RECENT_TRADES``, default 500 as Binance's own; it serves 1 to 1000).

    Raises:
        SettingError: not a whole number in 1..1000.
    """
    return _positive_int("MKT_BINANCE_RECENT_TRADES", DEFAULT_BINANCE_RECENT_TRADES, 1000)


DEFAULT_CAPTURE_HYPERLIQUID_URL = "wss://api.hyperliquid.xyz/ws"
DEFAULT_CAPTURE_BINANCE_LIQUIDATIONS_URL = "wss://fstream.binance.com/ws/!forceOrder@arr"


def capture_hyperliquid_url() -> str:
    """Hyperliquid's WebSocket API for the capture service (env
    ``MKT_CAPTURE_HYPERLIQUID_URL``, default ``wss://api.hyperliquid.xyz/ws``)."""
    return os.environ.get("MKT_CAPTURE_HYPERLIQUID_URL") or DEFAULT_CAPTURE_HYPERLIQUID_URL


def capture_binance_liquidations_url() -> str:
    """Binance USD-M futures' all-symbol liquidation stream for the capture service (env
    ``MKT_CAPTURE_BINANCE_LIQUIDATIONS_URL``, default
    ``wss://fstream.binance.com/ws/!forceOrder@arr``)."""
    return (
        os.environ.get("MKT_CAPTURE_BINANCE_LIQUIDATIONS_URL")
        or DEFAULT_CAPTURE_BINANCE_LIQUIDATIONS_URL
    )


def dbt_docs_url() -> str:
    """Root of the dbt docs site (env ``MKT_DBT_DOCS_URL``, default the docker-compose
    ``docs`` service as published, ``http://127.0.0.1:8080``), without a trailing slash."""
    return (os.environ.get("MKT_DBT_DOCS_URL", "").strip() or DEFAULT_DBT_DOCS_URL).rstrip("/")


def pool_wait_seconds() -> int:
    """How long ``mkt-platform materialize`` waits for the warehouse pool while live runs of
    other processes hold it, before giving up with a message (env ``MKT_POOL_WAIT_SECONDS``,
    default 900).

    Raises:
        SettingError: the value is not a positive integer.
    """
    return _positive_int("MKT_POOL_WAIT_SECONDS", 900)


def warehouse_lock_wait_seconds() -> int:
    """How long a dbt step waits while another process (a notebook, the DuckDB CLI, a BI
    tool) holds the DuckDB warehouse, before failing with a message naming it (env
    ``MKT_WAREHOUSE_LOCK_WAIT_SECONDS``, default 300).

    Raises:
        SettingError: the value is not a positive integer.
    """
    return _positive_int("MKT_WAREHOUSE_LOCK_WAIT_SECONDS", 300)


def allow_universe_shrink() -> bool:
    """Whether a re-pull may overwrite a raw partition that holds instruments the universe no
    longer lists, dropping them (env ``MKT_ALLOW_UNIVERSE_SHRINK``: ``1`` or ``0``, default
    ``0``). Off by default: a misspelled or truncated instruments file must not empty the lake.

    Raises:
        SettingError: the value is neither ``0`` nor ``1``.
    """
    return _switch("MKT_ALLOW_UNIVERSE_SHRINK", False)


def _switch(name: str, default: bool) -> bool:
    """An on/off setting: ``1`` or ``0`` (unset or empty: ``default``).

    Raises:
        SettingError: the value is neither ``0`` nor ``1``.
    """
    raw = os.environ.get(name, "").strip() or ("1" if default else "0")
    if raw not in ("0", "1"):
        raise SettingError(f"{name} must be 0 or 1, got {raw!r}")
    return raw == "1"


def dbt_in_process() -> bool:
    """Whether dbt commands run in the process of their Dagster run (``MKT_DBT_IN_PROCESS``,
    default ``1``: no child process start, about 2.4 CPU-s a command) or as a child process
    (``0``: ``mkt-dbt``, killed with its parent; see :mod:`mkt_platform.lib.dbt_in_process`).

    Raises:
        SettingError: ``MKT_DBT_IN_PROCESS`` is set to something other than ``0`` or ``1``.
    """
    return _switch("MKT_DBT_IN_PROCESS", True)


def verify_duckdb_extensions() -> bool:
    """Whether DuckDB checks an extension's signature each time a connection loads it
    (``MKT_DUCKDB_VERIFY_EXTENSIONS``, default ``0``: the extensions are loaded from the
    packages ``uv.lock`` pins and ``uv`` verified when it installed them, as trusted as
    DuckDB's own library beside them; ``1``: DuckDB hashes each 35-MB file again, about 0.1 s
    per extension and connection; see :mod:`mkt_platform.lib.duckdb_extensions`).

    Raises:
        SettingError: ``MKT_DUCKDB_VERIFY_EXTENSIONS`` is set to something other than ``0``
            or ``1``.
    """
    return _switch("MKT_DUCKDB_VERIFY_EXTENSIONS", False)


def charts_enabled() -> bool:
    """Whether the charted marts' materializations carry a chart (``MKT_CHARTS``, default
    ``1``; ``0`` skips drawing, about 1 s per dbt step that builds a charted mart).

    Raises:
        SettingError: ``MKT_CHARTS`` is set to something other than ``0`` or ``1``.
    """
    return _switch("MKT_CHARTS", True)


def instruments_file() -> Path:
    """The instrument universe file in force: env ``MKT_INSTRUMENTS_FILE``, or the packaged
    ``mkt_platform/instruments.yaml``."""
    default = Path(__file__).resolve().parent / "instruments.yaml"
    return Path(os.environ.get("MKT_INSTRUMENTS_FILE", default))


def exchange_base_urls() -> dict[str, str]:
    """Every exchange base URL the clients talk to, by variable name."""
    return {
        "BINANCE_BASE_URL": binance_base_url(),
        "HYPERLIQUID_BASE_URL": hyperliquid_base_url(),
        "DERIBIT_BASE_URL": deribit_base_url(),
        "DERIBIT_HISTORY_BASE_URL": deribit_history_base_url(),
    }


def replay_mode() -> bool:
    """Whether every exchange base URL points at this machine (``127.0.0.1``, ``localhost``,
    ``::1``): the clients talk to the replay server of recorded responses, which holds
    history and no "today", so the schedules that pull today's partitions start stopped."""
    hosts = {urlsplit(url).hostname for url in exchange_base_urls().values()}
    return hosts <= {"127.0.0.1", "localhost", "::1"}


def utcnow() -> datetime:
    """The current time, UTC. Every "now" of the platform (pull times, freshness, lookbacks)
    comes from here, so that tests can evaluate sensors and checks at a recorded moment."""
    return datetime.now(UTC)


#: Dagster's switch for batched event writes (0 or unset: one write per event), and the most
#: events it buffers before writing (a batch also ends with its last event). Dagster reads it
#: in every process that creates runs (planned events) or executes them (materializations).
EVENT_BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"
DEFAULT_EVENT_BATCH_SIZE = 1000


def enable_event_batches(environ: dict[str, str] | None = None) -> None:
    """Switch on Dagster's batched event writes in ``environ`` (default: this process's
    environment, which its children inherit), unless the variable is already set. The batches
    are written in one statement by Dagster's PostgreSQL storage and in one transaction by the
    embedded instance's (:mod:`mkt_platform.lib.event_storage`)."""
    target = os.environ if environ is None else environ
    target.setdefault(EVENT_BATCH_SIZE_ENV, str(DEFAULT_EVENT_BATCH_SIZE))


def polygon_options_band_pct() -> Decimal:
    """Half-width of the strike band of the tracked SPY options, in percent of the day's open:
    contracts with strikes within ``open * (1 ± band / 100)`` (env
    ``MKT_POLYGON_OPTIONS_BAND_PCT``, default 1; more than 0, at most 50).

    Raises:
        SettingError: the value is not a number in (0, 50].
    """
    name = "MKT_POLYGON_OPTIONS_BAND_PCT"
    raw = os.environ.get(name, "").strip() or "1"
    try:
        value = Decimal(raw)
    except ArithmeticError:
        value = Decimal("NaN")
    if not value.is_finite() or not 0 < value <= 50:
        raise SettingError(f"{name} must be a number of percent in (0, 50], got {raw!r}")
    return value


def polygon_options_expiry_days() -> int:
    """The expiry horizon of the tracked SPY options: contracts expiring from the trading day
    to this many calendar days after it (env ``MKT_POLYGON_OPTIONS_EXPIRY_DAYS``, default 7,
    at most 800).

    Raises:
        SettingError: the value is not a whole number in 1..800.
    """
    return _positive_int("MKT_POLYGON_OPTIONS_EXPIRY_DAYS", 7, 800)


def polygon_options_max_contracts() -> int:
    """The most SPY options contracts tracked per trading day (env
    ``MKT_POLYGON_OPTIONS_MAX_CONTRACTS``, default 100, the replaced system's limit per
    stream connection; at most 1,000): beyond it the nearest strikes to the open are kept.

    Raises:
        SettingError: the value is not a whole number in 1..1000.
    """
    return _positive_int("MKT_POLYGON_OPTIONS_MAX_CONTRACTS", 100, 1000)


def polygon_late_data() -> str:
    """What a re-pull does with bars of a closed trading day that differ from the lake's
    (env ``MKT_POLYGON_LATE_DATA``): ``reject`` (default: the day stays as first written,
    and an alert reports the late bars) or ``accept`` (the day is rewritten).

    Raises:
        SettingError: another value.
    """
    raw = os.environ.get("MKT_POLYGON_LATE_DATA", "").strip().lower() or "reject"
    if raw not in ("reject", "accept"):
        raise SettingError(f"MKT_POLYGON_LATE_DATA must be 'reject' or 'accept', got {raw!r}")
    return raw


def slow_write_seconds() -> int:
    """Seconds a partition's write may take before an alert (env ``MKT_SLOW_WRITE_SECONDS``,
    default 300: the replaced system alerted on a commit over 5 minutes; 1..86400).

    Raises:
        SettingError: the value is not a whole number in 1..86400.
    """
    return _positive_int("MKT_SLOW_WRITE_SECONDS", 300, 86_400)
