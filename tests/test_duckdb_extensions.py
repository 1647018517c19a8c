"""DuckDB's extensions come from the locked PyPI packages, never a download (issue 15, item 2),
and are loaded from the packages' own files, DuckDB's signature check kept only on request
(issue 13: it hashed each 35-MB file at every connection).

Each test's connection has an empty extension directory and its extension repository pointed
at a local HTTP server that counts the requests it gets and answers none with an extension:
a download attempt shows in the count (and fails), as it would offline.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from mkt_platform.lib.duckdb_extensions import (
    OFFLINE_EXTENSIONS,
    ExtensionUnavailableError,
    connection_config,
    extension_file,
    load_offline,
)
from mkt_platform.lib.duckdb_extensions import connect as platform_connect
from mkt_platform.settings import SettingError


class _Counting(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def repository() -> Iterator[tuple[str, list[str]]]:
    """A local extension repository that serves nothing and records every request."""
    handler = type("Handler", (_Counting,), {"requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.requests
    finally:
        server.shutdown()
        server.server_close()


def connect(tmp_path: Path, repository_url: str, **config: object) -> duckdb.DuckDBPyConnection:
    """A connection with an empty extension folder, ``tmp_path/extensions``, and the counting
    repository, and ``config`` besides."""
    return duckdb.connect(
        config={
            "extension_directory": str(tmp_path / "extensions"),
            "custom_extension_repository": repository_url,
            **config,
        }
    )


def loaded(con: duckdb.DuckDBPyConnection) -> dict[str, bool]:
    """Whether each of the platform's extensions is loaded in ``con``."""
    return dict(
        con.execute(
            "select extension_name, loaded from duckdb_extensions() "
            f"where extension_name in {tuple(OFFLINE_EXTENSIONS)}"
        ).fetchall()
    )


def test_a_plain_connection_would_download(tmp_path, repository):
    """The guard works: without the packages, DuckDB asks the repository for ducklake (and
    fails, as it would offline)."""
    url, requests = repository
    with connect(tmp_path, url) as con, pytest.raises(duckdb.Error):
        con.execute("ATTACH 'ducklake:x.ducklake' AS lake")
    assert any("ducklake" in path for path in requests), requests


def test_every_extension_loads_from_its_package_with_no_request(tmp_path, repository):
    url, requests = repository
    with connect(tmp_path, url) as con:
        load_offline(con)
        assert loaded(con) == dict.fromkeys(OFFLINE_EXTENSIONS, True)
        assert con.execute("select current_setting('autoinstall_known_extensions')").fetchone() == (
            False,
        )
        load_offline(con)  # idempotent
    assert requests == []


def test_a_ducklake_catalog_writes_and_reads_offline(tmp_path, repository):
    """A DuckLake catalog (in a DuckDB file here) with its data as Parquet under a folder:
    a table written by one connection is read back by another, with no request."""
    url, requests = repository
    catalog, data = tmp_path / "catalog.ducklake", tmp_path / "lake_files"
    attach = f"ATTACH 'ducklake:{catalog}' AS lake (DATA_PATH '{data}/')"
    with connect(tmp_path, url) as con:
        load_offline(con, ["ducklake"])
        con.execute(attach)
        con.execute("create table lake.t as select range as i, range * 0.5 as x from range(1000)")
    with connect(tmp_path, url) as con:
        load_offline(con, ["ducklake"])
        con.execute(attach)
        assert con.execute("select count(*), sum(i), sum(x) from lake.t").fetchone() == (
            1000,
            499500,
            249750.0,
        )
    assert list(data.rglob("*.parquet"))
    assert requests == []


def test_postgres_attaches_offline(tmp_path, repository):
    """The PostgreSQL extension (a DuckLake catalog's home in the deployment) reaches the
    local server with no download."""
    url, requests = repository
    with connect(tmp_path, url) as con:
        load_offline(con, ["postgres_scanner"])
        con.execute(
            "ATTACH 'dbname=test host=127.0.0.1 port=5432 user=postgres' AS pg "
            "(TYPE postgres, READ_ONLY)"
        )
        assert con.execute("select * from postgres_query('pg', 'select 41 + 1')").fetchone() == (
            42,
        )
    assert requests == []


def test_an_unshipped_extension_is_refused_by_name(tmp_path, repository):
    url, requests = repository
    with connect(tmp_path, url) as con, pytest.raises(ExtensionUnavailableError) as error:
        load_offline(con, ["spatial"])
    assert "'spatial'" in str(error.value) and "ducklake" in str(error.value)
    assert requests == []


def _version() -> str:
    with duckdb.connect() as con:
        return con.execute("PRAGMA version").fetchone()[0]


def test_the_platforms_connections_load_the_package_files_and_install_nothing(
    tmp_path, repository, monkeypatch
):
    """A connection made as the platform makes them (its settings, here with an empty
    extension folder): every extension loads from its package's own file, nothing is copied
    into DuckDB's extension folder, and nothing is installed or loaded on DuckDB's own
    initiative afterwards."""
    monkeypatch.delenv("MKT_DUCKDB_VERIFY_EXTENSIONS", raising=False)
    url, requests = repository
    folder = tmp_path / "extensions"
    with connect(tmp_path, url, **connection_config()) as con:
        load_offline(con)
        assert loaded(con) == dict.fromkeys(OFFLINE_EXTENSIONS, True)
        settings = con.execute(
            "select current_setting('autoinstall_known_extensions'), "
            "current_setting('autoload_known_extensions'), "
            "current_setting('allow_unsigned_extensions')"
        ).fetchone()
        assert settings == (False, False, True)
        # An extension the platform never loaded is not fetched nor loaded for a query.
        with pytest.raises(duckdb.Error):
            con.execute("select * from read_xlsx('x.xlsx')")
    assert not folder.exists() or not any(folder.rglob("*")), list(folder.rglob("*"))
    assert requests == []


def test_a_tampered_extension_loads_only_while_signatures_are_not_checked(tmp_path, monkeypatch):
    """What MKT_DUCKDB_VERIFY_EXTENSIONS=1 buys: a copy of the SQLite extension whose
    signature no longer matches is refused, naming the signature, while the package's own file
    still loads; unchecked (the default, the files being the hash-locked packages' own) the
    same copy loads. So the switch really hands the check back to DuckDB."""
    shipped = extension_file("sqlite_scanner", _version())
    tampered = tmp_path / "sqlite_scanner.duckdb_extension"
    data = bytearray(shipped.read_bytes())
    data[-1] ^= 0xFF  # the last bytes of the file are its signature
    tampered.write_bytes(bytes(data))

    monkeypatch.setenv("MKT_DUCKDB_VERIFY_EXTENSIONS", "1")
    assert connection_config()["allow_unsigned_extensions"] is False
    with platform_connect() as con:
        with pytest.raises(duckdb.Error, match=r"(?i)signature"):
            con.execute(f"LOAD '{tampered}'")
        load_offline(con, ["sqlite_scanner"])
        assert loaded(con)["sqlite_scanner"]

    monkeypatch.setenv("MKT_DUCKDB_VERIFY_EXTENSIONS", "0")
    with platform_connect() as con:
        con.execute(f"LOAD '{tampered}'")
        assert loaded(con)["sqlite_scanner"]


def test_a_malformed_verify_setting_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("MKT_DUCKDB_VERIFY_EXTENSIONS", "yes")
    with pytest.raises(SettingError, match="MKT_DUCKDB_VERIFY_EXTENSIONS"):
        platform_connect()


def test_dbts_database_is_opened_with_the_platforms_settings(tmp_path, monkeypatch):
    """dbt-duckdb opens its database through the profile's plugin, which hands it the same
    settings before it connects: a query dbt runs reads them back, and the DuckLake it
    attached (its extensions loaded from the packages) answers."""
    from mkt_platform.lib.dbt import dbt_resource

    monkeypatch.delenv("MKT_DUCKDB_VERIFY_EXTENSIONS", raising=False)
    monkeypatch.delenv("MKT_WAREHOUSE", raising=False)
    monkeypatch.setenv("MKT_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    sql = (
        "select current_setting('allow_unsigned_extensions') as unsigned, "
        "current_setting('autoload_known_extensions') as autoload, "
        "current_setting('autoinstall_known_extensions') as autoinstall, "
        "(select count(*) from duckdb_databases() where database_name = 'warehouse') as lakes"
    )
    invocation = dbt_resource().cli(
        ["show", "--inline", sql, "--output", "json"], raise_on_error=False
    )
    events = [event.raw_event for event in invocation.stream_raw_events()]
    assert invocation.is_successful(), events[-3:]
    (shown,) = [e["data"]["preview"] for e in events if e["info"]["name"] == "ShowNode"]
    assert json.loads(shown) == [
        {"unsigned": True, "autoload": False, "autoinstall": False, "lakes": 1}
    ]
