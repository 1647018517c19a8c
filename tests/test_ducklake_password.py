"""A DuckLake catalog on a PostgreSQL that asks for a password (issue 15): the password
reaches libpq as ``PGPASSWORD`` (the deployment's way, docker-compose.yml), never the
catalog setting; a wrong one is refused with PostgreSQL's reason and without the password.

The machine's PostgreSQL trusts every local connection, so a password there would prove
nothing: the test starts a private cluster of its own (``initdb`` with scram-sha-256, on a
free port, as the ``postgres`` user when run as root) for this module, and stops it after.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient

from mkt_platform import api, warehouse

PASSWORD = "catalog-secret-7f3a"


def postgres_bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[-1:]
    return found if isinstance(found, str) else (found[0] if found else None)


@pytest.fixture(scope="module")
def password_postgres() -> Iterator[str]:
    """A private PostgreSQL cluster that wants scram-sha-256 passwords; yields the catalog
    setting (a conninfo without the password) of its database ``lake``, owned by ``mkt``."""
    initdb, pg_ctl, psql = (postgres_bin(n) for n in ("initdb", "pg_ctl", "psql"))
    if not (initdb and pg_ctl and psql):
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    # Not under pytest's tmp: its root folder is private to this user, and the server may run
    # as another.
    folder = Path(tempfile.mkdtemp(prefix="mkt-pg-password-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    (folder / "pw").write_text("admin-pw\n")
    if as_user:
        shutil.chown(folder / "pw", "postgres")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = folder / "data"
    subprocess.run(
        [*as_user, initdb, "-D", str(data), "-A", "scram-sha-256", "-U", "admin",
         f"--pwfile={folder / 'pw'}", "-E", "UTF8"],
        check=True, capture_output=True,
    )  # fmt: skip
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    subprocess.run(
        [*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w",
         "start"],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        admin = {**os.environ, "PGPASSWORD": "admin-pw"}
        for sql in (
            f"create role mkt login password '{PASSWORD}'",
            "create database lake owner mkt",
        ):
            subprocess.run(
                [psql, "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "admin", "-d", "postgres",
                 "-c", sql],
                check=True, env=admin, capture_output=True,
            )  # fmt: skip
        yield f"postgres:host=127.0.0.1 port={port} dbname=lake user=mkt"
    finally:
        subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def lake(password_postgres, tmp_path, monkeypatch) -> str:
    monkeypatch.setenv("MKT_WAREHOUSE", "ducklake")
    monkeypatch.setenv("MKT_DUCKLAKE_CATALOG", password_postgres)
    monkeypatch.setenv("MKT_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MKT_API_TOKEN", raising=False)
    return password_postgres


def test_the_password_from_pgpassword_opens_the_catalog(lake, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    with warehouse.connect(read_only=False) as con:
        con.execute("create schema if not exists marts")
        con.execute(
            "create or replace table marts.dvol_daily as select 'BTC' as currency, "
            "date '2025-07-01' as day, 60.5::decimal(38, 8) as open, 61::decimal(38, 8) as high,"
            " 59::decimal(38, 8) as low, 60::decimal(38, 8) as close"
        )
    assert PASSWORD not in warehouse.describe()
    with warehouse.connect() as reader:
        assert reader.execute("select currency, close from marts.dvol_daily").fetchall() == [
            ("BTC", 60)
        ]
    # The read API reads it with the same password.
    rows = TestClient(api.create_app()).get("/volatility/dvol").json()["rows"]
    assert [(r["currency"], r["close"]) for r in rows] == [("BTC", 60)]


@pytest.mark.parametrize("given", [None, "wrong-" + PASSWORD])
def test_a_missing_or_wrong_password_is_refused_with_the_reason_and_no_secret(
    lake, monkeypatch, given
):
    if given is None:
        monkeypatch.delenv("PGPASSWORD", raising=False)
    else:
        monkeypatch.setenv("PGPASSWORD", given)
    monkeypatch.setenv("PGPASSFILE", os.devnull)  # no ~/.pgpass to fall back on
    with pytest.raises(duckdb.Error) as error:
        warehouse.connect(read_only=False)
    message = str(error.value)
    assert 'password authentication failed for user "mkt"' in message or (
        "no password supplied" in message
    ), message
    assert PASSWORD not in message
    # The API answers 503 with the same reason, never a 500, and leaks no password either.
    response = TestClient(api.create_app()).get("/volatility/dvol")
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert "cannot open the warehouse" in response.text and PASSWORD not in response.text
