"""DuckDB's extensions come from the locked PyPI packages, never a download (issue 15, item 2).

Each test's connection has an empty extension directory and its extension repository pointed
at a local HTTP server that counts the requests it gets and answers none with an extension:
a download attempt shows in the count (and fails), as it would offline.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from mkt_platform.lib.duckdb_extensions import (
    OFFLINE_EXTENSIONS,
    ExtensionUnavailableError,
    load_offline,
)


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


def connect(tmp_path: Path, repository_url: str) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(
        config={
            "extension_directory": str(tmp_path / "extensions"),
            "custom_extension_repository": repository_url,
        }
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
        loaded = dict(
            con.execute(
                "select extension_name, loaded from duckdb_extensions() "
                f"where extension_name in {tuple(OFFLINE_EXTENSIONS)}"
            ).fetchall()
        )
        assert loaded == dict.fromkeys(OFFLINE_EXTENSIONS, True)
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
