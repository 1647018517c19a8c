"""The read API (``mkt-platform api``, issue 15): every dataset paged through equals its mart
row for row and value for value, filters and ranges select what the SQL selects, CSV and
Parquet hold the same rows, bad input gets a 4xx naming the parameter, the bearer token is
enforced, and schemathesis finds no request that gets a 5xx or breaks the OpenAPI schema.

The warehouse is a DuckLake (SQLite catalog), built once for the module through the main
job from real recordings served by the replay: the Deribit option trades and DVOL of
2024-04-01 (Amberdata, ``../shared/data/deribit/``) and, for 2025-06-26..07-04, Binance's
BTCUSDT, ETHUSDT and SOLUSDT 1h klines, Hyperliquid's BTC, ETH, SOL and HYPE 1h candles and
funding (freqtrade) and DVOL (see ``../shared/data/SOURCES.md``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from mkt_platform import api, warehouse
from tests.conftest import RECORDED_INSTRUMENTS, REPO, materialize_days

pytestmark = pytest.mark.slow

TOKEN = "test-token-" + "x" * 21


@pytest.fixture(scope="module")
def lake_warehouse(tmp_path_factory, replay) -> dict[str, str]:
    """The environment of a DuckLake warehouse built from the recordings named above."""
    path = tmp_path_factory.mktemp("api") / "data"
    env = {
        "MKT_DATA_DIR": str(path),
        "MKT_WAREHOUSE": "ducklake",
        "MKT_INSTRUMENTS_FILE": str(RECORDED_INSTRUMENTS),
        "BINANCE_BASE_URL": replay.base_url("binance"),
        "HYPERLIQUID_BASE_URL": replay.base_url("hyperliquid"),
        "DERIBIT_BASE_URL": replay.base_url("deribit"),
        "DERIBIT_HISTORY_BASE_URL": replay.base_url("deribit_history"),
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        patch.delenv("MKT_API_TOKEN", raising=False)
        with dg.DagsterInstance.ephemeral() as instance:
            for start, end, only in (
                (date(2024, 4, 1), date(2024, 4, 1), ("deribit_option_trades",)),
                (
                    date(2025, 6, 26),
                    date(2025, 7, 4),
                    (
                        "binance_klines_1h",
                        "hyperliquid_candles_1h",
                        "hyperliquid_funding_rates",
                        "deribit_volatility_index",
                    ),
                ),
            ):
                results = materialize_days(start, end, instance, only=only)
                assert all(r.success for r in results), [(r.step.label, r.success) for r in results]
    return env


@pytest.fixture
def lake_env(lake_warehouse, monkeypatch) -> dict[str, str]:
    for key, value in lake_warehouse.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MKT_API_TOKEN", raising=False)
    return lake_warehouse


@pytest.fixture
def client(lake_env) -> TestClient:
    return TestClient(api.create_app())


def mart_rows(dataset: api.Dataset, where: str = "true", params=()) -> list[dict]:
    """The relation's rows straight from the warehouse, in the dataset's key order."""
    with warehouse.connect() as con:
        cursor = con.execute(
            f"select * from {dataset.relation} where {where} order by {', '.join(dataset.key)}",
            list(params),
        )
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def as_warehouse_values(row: dict, like: dict) -> dict:
    """An API row (JSON, decimals parsed as Decimal) in the Python types of the mart's row:
    ISO timestamps to aware datetimes, dates to dates."""
    out = {}
    for name, value in row.items():
        reference = like[name]
        if isinstance(reference, float) and value is not None:
            value = float(value)  # DuckDB writes a double's shortest repr
        elif isinstance(reference, datetime) and value is not None:
            value = datetime.fromisoformat(value)
        elif isinstance(reference, date) and value is not None:
            value = date.fromisoformat(value)
        out[name] = value
    return out


def pages(client: TestClient, path: str, **params) -> tuple[list[dict], int]:
    """Every row of ``path``, following ``next``; and the number of pages."""
    rows: list[dict] = []
    url, count = path, 0
    response = client.get(url, params=params)
    while True:
        assert response.status_code == 200, response.text
        body = json.loads(response.text, parse_float=Decimal)
        assert body["count"] == len(body["rows"])
        rows += body["rows"]
        count += 1
        if body["next"] is None:
            assert "link" not in response.headers
            return rows, count
        assert response.headers["link"] == f'<{body["next"]}>; rel="next"'
        response = client.get(body["next"])


def test_every_dataset_paged_through_equals_its_mart_value_for_value(client):
    built = {d["name"]: d["built"] for d in client.get("/datasets").json()}
    assert not built["sessions/monthly"]  # no month closes in these days
    checked = []
    for dataset in api.DATASETS:
        if not built[dataset.name]:
            assert client.get(dataset.path).status_code == 404
            continue
        expected = mart_rows(dataset)
        assert expected, dataset.name
        limit = max(1, len(expected) // 3)  # at least three pages, the last maybe partial
        got, count = pages(client, dataset.path, limit=limit)
        assert count == -(-len(expected) // limit) >= 3, dataset.name
        assert len(got) == len(expected), dataset.name
        for api_row, mart_row in zip(got, expected, strict=True):
            # Exact: a DECIMAL(38, 8) travels as its digits, never through a float.
            assert as_warehouse_values(api_row, mart_row) == {
                k: (None if isinstance(v, float) and v != v else v) for k, v in mart_row.items()
            }, dataset.name
        checked.append(dataset.name)
    assert len(checked) == len(api.DATASETS) - 1, checked


def test_a_decimal_keeps_its_last_digit(client):
    """An option price of 0.0001 BTC and a session volume with 8 decimals come back as
    written in the warehouse, digit for digit (a float would keep 0.0001 but not, say,
    a volume like 10654.12301000 beside 17 significant digits)."""
    sessions = SESSIONS
    expected = mart_rows(sessions, "instrument = 'BTCUSDT'")
    response = client.get(sessions.path, params={"instrument": "BTCUSDT"})
    text_rows = response.text.split('"rows":[', 1)[1]
    for row in expected:
        assert f'"volume":{row["volume"]}' in text_rows  # Decimal's str keeps its zeros
        assert f'"quote_volume":{row["quote_volume"]}' in text_rows


SESSIONS = next(d for d in api.DATASETS if d.name == "sessions/daily")


def test_filters_and_ranges_select_what_the_sql_selects(client):
    params = {"instrument": ["BTCUSDT", "ETH"], "start": "2025-06-28", "end": "2025-07-01"}
    got = client.get(SESSIONS.path, params=params).json()["rows"]
    expected = mart_rows(
        SESSIONS,
        "instrument in ('BTCUSDT', 'ETH') and session_start >= '2025-06-28' "
        "and session_start < '2025-07-02'",
    )
    # Four sessions (06-28..07-01 08:00) of two instruments: a date end includes its day.
    assert len(expected) == 8
    assert [(r["instrument"], r["session_start"]) for r in got] == [
        (r["instrument"], r["session_start"].strftime("%Y-%m-%dT%H:%M:%S.000Z")) for r in expected
    ]
    # A date-time end is included; one with an offset is read in UTC.
    one = client.get(
        SESSIONS.path,
        params={
            "source": "binance",
            "instrument": "SOLUSDT",
            "start": "2025-06-30T10:00:00+02:00",
            "end": "2025-06-30T08:00:00Z",
        },
    ).json()["rows"]
    assert [r["session_start"] for r in one] == ["2025-06-30T08:00:00.000Z"]
    expiry = client.get("/options/expiries", params={"expiry": "2024-04-26"}).json()["rows"]
    assert expiry and {r["expiry"] for r in expiry} == {"2024-04-26T08:00:00.000Z"}
    assert len(expiry) == len(
        mart_rows(
            next(d for d in api.DATASETS if d.name == "options/expiries"),
            "cast(expiry as date) = '2024-04-26'",
        )
    )


def test_csv_and_parquet_hold_the_rows_of_the_json(client):
    params = {"instrument": ["BTCUSDT", "SOLUSDT"], "limit": 7}
    body = json.loads(client.get(SESSIONS.path, params=params).text, parse_float=Decimal)
    as_csv = client.get(SESSIONS.path, params={**params, "format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert 'filename="sessions_daily.csv"' in as_csv.headers["content-disposition"]
    assert "format=csv" in as_csv.headers["link"]
    assert body["next"].split("cursor=")[1] in as_csv.headers["link"]
    csv_rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert len(csv_rows) == 7
    for row, json_row in zip(csv_rows, body["rows"], strict=True):
        assert Decimal(row["close"]) == json_row["close"]
        assert row["session_start"] == json_row["session_start"]
        assert row["instrument"] == json_row["instrument"]

    as_parquet = client.get(SESSIONS.path, params={**params, "format": "parquet"})
    assert as_parquet.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(as_parquet.content))
    assert table.schema.field("close").type == pa.decimal128(38, 8)
    assert table.schema.field("session_start").type == pa.timestamp("us", tz="UTC")
    expected = mart_rows(SESSIONS, "instrument in ('BTCUSDT', 'SOLUSDT')")[:7]
    assert table.to_pylist() == expected
    # The Parquet page's cursor continues where the JSON page's does.
    next_parquet = as_parquet.headers["link"].split(">")[0][1:]
    rest = pq.read_table(io.BytesIO(client.get(next_parquet).content)).to_pylist()
    assert rest[0] == mart_rows(SESSIONS, "instrument in ('BTCUSDT', 'SOLUSDT')")[7]


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"instrument": "BTCUSD"}, 404, ["instrument: BTCUSD not in", "BTCUSDT"]),
        ({"source": "okx"}, 404, ["source: okx not in", "binance", "hyperliquid"]),
        ({"start": "2025-07-02", "end": "2025-07-01"}, 422, ["start (2025-07-02) is after end"]),
        ({"start": "2025-07-02T00:00:00Z", "end": "2025-07-01"}, 422, ["is after end"]),
        ({"start": "yesterday"}, 422, ["start"]),
        ({"start": "2025-02-30"}, 422, ["start"]),
        ({"limit": 0}, 422, ["limit"]),
        ({"limit": 10_001}, 422, ["limit"]),
        ({"cursor": "not-a-cursor"}, 422, ["cursor: not a cursor of /sessions/daily"]),
        ({"format": "xlsx"}, 422, ["format"]),
    ],
)
def test_bad_input_gets_a_4xx_naming_the_parameter(client, params, status, words):
    response = client.get(SESSIONS.path, params=params)
    assert response.status_code == status, response.text
    for word in words:
        assert word in response.text, response.text


def test_a_cursor_of_another_dataset_or_with_bad_values_is_refused(client):
    first = client.get("/sessions/weekly", params={"limit": 1}).json()
    cursor = first["next"].split("cursor=")[1]
    response = client.get(SESSIONS.path, params={"cursor": cursor})
    assert response.status_code == 422 and "not a cursor of /sessions/daily" in response.text
    forged = api._encode_cursor(
        SESSIONS, {"session_start": "June", "source": "x", "instrument": "y"}
    )
    response = client.get(SESSIONS.path, params={"cursor": forged})
    assert response.status_code == 422 and "do not fit" in response.text


def test_no_warehouse_yet_is_503_and_health_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("MKT_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("MKT_WAREHOUSE", "ducklake")
    monkeypatch.delenv("MKT_API_TOKEN", raising=False)
    client = TestClient(api.create_app())
    assert client.get("/health").json() == {
        "status": "ok",
        "warehouse": "ducklake",
        "warehouse_built": False,
    }
    response = client.get(SESSIONS.path)
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert "no warehouse yet" in response.json()["detail"]


def test_the_duckdb_file_being_written_is_503_then_served(tmp_path, monkeypatch):
    """On the DuckDB file, a writer's lock (dbt, here a process holding the file open for
    writing) makes a request 503 with Retry-After, not a 500 or a hang; once the writer
    closes, the same request is served."""
    monkeypatch.setenv("MKT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MKT_WAREHOUSE", "duckdb")
    monkeypatch.delenv("MKT_API_TOKEN", raising=False)
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(
            "create schema marts; create table marts.dvol_daily as select 'BTC' as currency, "
            "date '2025-07-01' as day, 60.5::decimal(38, 8) as open, 61::decimal(38, 8) as high, "
            "59::decimal(38, 8) as low, 60::decimal(38, 8) as close"
        )
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
            " time.sleep(60)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "held"
        client = TestClient(api.create_app())
        response = client.get("/volatility/dvol")
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "5"
        assert "cannot open the warehouse" in response.json()["detail"]
    finally:
        writer.kill()
        writer.wait()
    response = client.get("/volatility/dvol")
    assert response.status_code == 200
    assert json.loads(response.text, parse_float=Decimal)["rows"] == [
        {
            "currency": "BTC",
            "day": "2025-07-01",
            "open": Decimal("60.50000000"),
            "high": Decimal("61.00000000"),
            "low": Decimal("59.00000000"),
            "close": Decimal("60.00000000"),
        }
    ]


def test_a_set_token_is_required_of_data_requests_only(lake_env):
    client = TestClient(api.create_app(TOKEN))
    for headers in ({}, {"Authorization": "Bearer wrong-" + TOKEN}, {"Authorization": TOKEN}):
        response = client.get(SESSIONS.path, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"
        assert TOKEN not in response.text
    assert client.get("/datasets").status_code == 401
    ok = client.get(SESSIONS.path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and ok.json()["count"] > 0
    assert client.get("/health").status_code == 200
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_the_openapi_schema_describes_every_dataset_with_its_columns(client):
    schema = client.get("/openapi.json").json()
    for dataset in api.DATASETS:
        operation = schema["paths"][dataset.path]["get"]
        names = {p["name"] for p in operation["parameters"]}
        assert {"start", "end", "limit", "cursor", "format"} <= names
        assert {f.name for f in dataset.filters} <= names
    daily = schema["paths"]["/sessions/daily"]["get"]["description"]
    assert "`chhightime`:" in daily  # the column descriptions of the dbt docs


# Loaded when the module is collected: the app reads the warehouse's settings per request, so
# the test's lake_env applies. (schemathesis.pytest.from_fixture reads a pytest internal that
# pytest 9.2 removed.)
with pytest.MonkeyPatch.context() as _patch:
    _patch.delenv("MKT_API_TOKEN", raising=False)
    fuzzed = schemathesis.openapi.from_asgi("/openapi.json", api.create_app())


@fuzzed.parametrize()
@hypothesis_settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_fuzzed_requests_never_get_a_server_error_and_match_the_schema(case, lake_env):
    """Schemathesis generates requests from the OpenAPI schema, valid and invalid, for every
    operation: none gets a 5xx, an invalid one is refused with a 4xx, and each answer
    conforms to the schema (status, content type, headers, body).

    Not checked: that every schema-valid request is accepted. The API refuses with 422 what
    the OpenAPI schema cannot express (``start`` after ``end``, a cursor it did not issue),
    and answers 404 for an instrument the mart does not hold; the tests above hold those."""
    from schemathesis.checks import positive_data_acceptance

    case.call_and_validate(excluded_checks=[positive_data_acceptance])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_command_serves_on_loopback_and_stops_on_sigterm(lake_env):
    port = free_port()
    env = {**os.environ, **lake_env, "MKT_API_TOKEN": TOKEN}
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mkt-platform"), "api", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        assert health.json()["warehouse_built"] is True
        response = httpx.get(
            f"http://127.0.0.1:{port}{SESSIONS.path}",
            params={"instrument": "BTCUSDT", "start": "2025-07-01", "end": "2025-07-01"},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=60,
        )
        assert [r["close"] for r in response.json()["rows"]] == [
            float(r["close"])
            for r in mart_rows(
                SESSIONS, "instrument = 'BTCUSDT' and session_start = '2025-07-01 08:00:00+00'"
            )
        ]
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    # uvicorn shuts down cleanly, then ends by the signal it caught (-15) as a server should.
    assert server.returncode in (0, -signal.SIGTERM), output
    assert "Finished server process" in output
    assert "Uvicorn running on http://127.0.0.1:" in output
    assert TOKEN not in output
