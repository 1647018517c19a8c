"""Tests of the replay server against the real Binance recordings in shared/data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from mkt_platform.replay import ReplayServer, Response

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
BINANCE_DIR = DATA_DIR / "binance"
REPO_ROOT = Path(__file__).resolve().parents[1]
HOUR_MS = 3_600_000


def ms(text: str) -> int:
    """UTC ISO timestamp -> epoch milliseconds."""
    return round(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def recorded(name: str) -> list[list[object]]:
    return json.loads((BINANCE_DIR / name).read_text())


#: The recordings these tests mean: Binance's 1h klines of 2023-01..06 and the 1d klines of
#: 2022-01..2023-12 for BTC/ETH/SOLUSDT (SOURCES.md section 1). shared/data grows (later 1h
#: months, more 1m windows), so the "latest klines" and "outside the recording" answers are
#: asked of a folder that holds exactly these files.
RECORDINGS_2023 = tuple(
    f"klines_{symbol}_{span}.json"
    for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    for span in (*(f"1h_2023-0{m}" for m in range(1, 7)), "1d_2022-01_to_2023-12")
)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplayServer]:
    data_dir = tmp_path_factory.mktemp("recordings_2023")
    (data_dir / "binance").mkdir()
    for name in RECORDINGS_2023:
        (data_dir / "binance" / name).symlink_to(BINANCE_DIR / name)
    with ReplayServer(data_dir) as server:
        yield server


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    """A fresh server, for tests that inject responses or count requests."""
    with ReplayServer(DATA_DIR) as server:
        yield server


@pytest.fixture(scope="module")
def client(shared_server: ReplayServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_server.base_url("binance"), timeout=10) as client:
        yield client


def klines(client: httpx.Client, **params: object) -> httpx.Response:
    return client.get("/api/v3/klines", params=params)


def pull(client: httpx.Client, symbol: str, start: int, end: int) -> list[list[object]]:
    """Page through [start, end] the way a client does: limit 1000, next startTime."""
    rows: list[list[object]] = []
    while True:
        resp = klines(
            client, symbol=symbol, interval="1h", startTime=start, endTime=end, limit=1000
        )
        assert resp.status_code == 200, resp.text
        page = resp.json()
        rows.extend(page)
        if len(page) < 1000:
            return rows
        start = page[-1][0] + 1


# -- data ------------------------------------------------------------------------------


def test_january_2023_pull_is_the_recording(client: httpx.Client) -> None:
    rows = pull(client, "BTCUSDT", ms("2023-01-01T00:00"), ms("2023-01-31T23:59:59.999"))
    assert len(rows) == 744
    assert rows == recorded("klines_BTCUSDT_1h_2023-01.json")


def test_multi_page_pull_merges_the_monthly_files(server: ReplayServer) -> None:
    expected: list[list[object]] = []
    for month in range(1, 7):
        expected += recorded(f"klines_ETHUSDT_1h_2023-{month:02d}.json")
    with httpx.Client(base_url=server.base_url("binance")) as client:
        rows = pull(client, "ETHUSDT", ms("2023-01-01T00:00"), ms("2023-06-30T23:00"))
    assert len(rows) == 744 + 672 + 743 + 720 + 744 + 720
    assert rows == expected
    # 4343 rows in pages of 1000: four full pages and one short one.
    assert server.request_count("binance") == 5


def test_daily_file(client: httpx.Client) -> None:
    resp = klines(client, symbol="SOLUSDT", interval="1d", limit=1000)
    assert resp.status_code == 200
    assert resp.json() == recorded("klines_SOLUSDT_1d_2022-01_to_2023-12.json")


def test_recorded_bytes_are_preserved(client: httpx.Client) -> None:
    resp = klines(
        client, symbol="BTCUSDT", interval="1h", startTime=ms("2023-01-01T00:00"), limit=1
    )
    assert resp.headers["content-type"].startswith("application/json")
    assert '"16541.77000000"' in resp.text
    assert resp.text.startswith('[[1672531200000,"16541.77000000",')
    (row,) = resp.json()
    assert [type(v) for v in row] == [int, str, str, str, str, str, int, str, int, str, str, str]
    assert row == recorded("klines_BTCUSDT_1h_2023-01.json")[0]


def test_halt_on_2023_03_24_is_a_gap(client: httpx.Client) -> None:
    resp = klines(
        client,
        symbol="BTCUSDT",
        interval="1h",
        startTime=ms("2023-03-24T00:00"),
        endTime=ms("2023-03-24T23:59:59.999"),
    )
    opens = [row[0] for row in resp.json()]
    assert len(opens) == 23
    assert ms("2023-03-24T13:00") not in opens
    assert ms("2023-03-24T12:00") in opens and ms("2023-03-24T14:00") in opens


# -- time range and limit semantics ----------------------------------------------------


def test_start_and_end_are_inclusive_on_open_time(client: httpx.Client) -> None:
    t = ms("2023-02-10T05:00")
    (row,) = klines(client, symbol="BTCUSDT", interval="1h", startTime=t, endTime=t).json()
    assert row[0] == t
    # A start one ms after an open time skips that candle; an end one ms before excludes it.
    rows = klines(client, symbol="BTCUSDT", interval="1h", startTime=t + 1, limit=1).json()
    assert rows[0][0] == t + HOUR_MS
    rows = klines(client, symbol="BTCUSDT", interval="1h", startTime=t, endTime=t + HOUR_MS - 1)
    assert [r[0] for r in rows.json()] == [t]


def test_default_limit_is_500_from_start_time(client: httpx.Client) -> None:
    start = ms("2023-01-01T00:00")
    rows = klines(client, symbol="BTCUSDT", interval="1h", startTime=start).json()
    assert len(rows) == 500
    assert rows[0][0] == start
    assert rows[-1][0] == start + 499 * HOUR_MS


def test_without_start_time_the_latest_klines_are_returned(client: httpx.Client) -> None:
    rows = klines(client, symbol="BTCUSDT", interval="1h").json()
    assert len(rows) == 500
    assert rows[-1][0] == ms("2023-06-30T23:00")

    end = ms("2023-02-01T00:00")
    rows = klines(client, symbol="BTCUSDT", interval="1h", endTime=end, limit=3).json()
    assert [r[0] for r in rows] == [end - 2 * HOUR_MS, end - HOUR_MS, end]


def test_start_and_end_with_more_than_limit_gives_the_first_page(client: httpx.Client) -> None:
    start, end = ms("2023-01-01T00:00"), ms("2023-01-31T23:00")
    rows = klines(client, symbol="BTCUSDT", interval="1h", startTime=start, endTime=end, limit=10)
    assert [r[0] for r in rows.json()] == [start + i * HOUR_MS for i in range(10)]


@pytest.mark.parametrize(
    ("start", "end"),
    [("2021-01-01T00:00", "2021-12-31T00:00"), ("2024-01-01T00:00", None)],
)
def test_ranges_outside_the_recording_are_empty(
    client: httpx.Client, start: str, end: str | None
) -> None:
    params: dict[str, object] = {"symbol": "BTCUSDT", "interval": "1h", "startTime": ms(start)}
    if end is not None:
        params["endTime"] = ms(end)
    resp = klines(client, **params)
    assert resp.status_code == 200
    assert resp.json() == []


# -- errors ----------------------------------------------------------------------------


def assert_error(resp: httpx.Response, status: int, code: int, msg: str | None = None) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["code"] == code
    if msg is not None:
        assert body["msg"] == msg


def test_limit_over_1000_is_rejected(client: httpx.Client) -> None:
    resp = klines(client, symbol="BTCUSDT", interval="1h", limit=1001)
    assert_error(resp, 400, -1130, "Invalid data sent for a parameter.")
    assert_error(klines(client, symbol="BTCUSDT", interval="1h", limit=0), 400, -1130)
    assert klines(client, symbol="BTCUSDT", interval="1h", limit=1000).status_code == 200


@pytest.mark.parametrize(("name", "value"), [("limit", "ten"), ("startTime", "-1")])
def test_malformed_numbers_are_rejected(client: httpx.Client, name: str, value: str) -> None:
    resp = klines(client, symbol="BTCUSDT", interval="1h", **{name: value})
    assert_error(
        resp,
        400,
        -1100,
        f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
    )


def test_unknown_symbol(client: httpx.Client) -> None:
    assert_error(klines(client, symbol="DOGEUSDT", interval="1h"), 400, -1121, "Invalid symbol.")


def test_invalid_interval(client: httpx.Client) -> None:
    resp = klines(client, symbol="BTCUSDT", interval="2d")
    assert_error(resp, 400, -1120, "Invalid interval.")


def test_valid_but_unrecorded_interval_is_a_replay_404(
    client: httpx.Client, shared_server: ReplayServer
) -> None:
    resp = klines(client, symbol="BTCUSDT", interval="4h")
    folder = shared_server.data_dir / "binance"
    assert_error(resp, 404, -1, f"replay: no recording of BTCUSDT 4h in {folder}")


@pytest.mark.parametrize("missing", ["symbol", "interval"])
def test_missing_mandatory_parameter(client: httpx.Client, missing: str) -> None:
    params = {"symbol": "BTCUSDT", "interval": "1h"}
    del params[missing]
    msg = f"Mandatory parameter '{missing}' was not sent, was empty/null, or malformed."
    assert_error(klines(client, **params), 400, -1102, msg)
    assert_error(klines(client, **params, **{missing: ""}), 400, -1102, msg)


def test_start_after_end(client: httpx.Client) -> None:
    resp = klines(client, symbol="BTCUSDT", interval="1h", startTime=2, endTime=1)
    assert_error(resp, 400, -1023, "Start time is greater than end time.")


def test_unknown_paths_are_json_404s(shared_server: ReplayServer) -> None:
    assert_error(httpx.get(shared_server.base_url("binance") + "/api/v3/avgPrice"), 404, -1)
    assert_error(httpx.get(shared_server.url + "/kraken/0/public/OHLC"), 404, -1)


# -- fault injection and counting ------------------------------------------------------


def test_injected_500_is_served_once(server: ReplayServer) -> None:
    server.inject("binance", [Response(500, {"Content-Type": "text/html"}, b"<html>oops</html>")])
    with httpx.Client(base_url=server.base_url("binance")) as client:
        first = klines(client, symbol="BTCUSDT", interval="1h", limit=1)
        second = klines(client, symbol="BTCUSDT", interval="1h", limit=1)
    assert first.status_code == 500
    assert first.text == "<html>oops</html>"
    assert second.status_code == 200
    assert len(second.json()) == 1
    assert server.request_count("binance") == 2


def test_injected_responses_are_fifo(server: ReplayServer) -> None:
    server.inject(
        "binance",
        [
            Response(429, {"Retry-After": "7"}, b""),
            Response.json({"code": -1003, "msg": "Too many requests."}, 418),
        ],
    )
    url = server.base_url("binance") + "/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=1"
    statuses = []
    for _ in range(3):
        resp = httpx.get(url)
        statuses.append(resp.status_code)
        if resp.status_code == 429:
            assert resp.headers["retry-after"] == "7"
    assert statuses == [429, 418, 200]


def test_injected_truncated_body_breaks_the_transfer(server: ReplayServer) -> None:
    server.inject("binance", [Response(200, {"Content-Length": "1000"}, b"[[1672531200000,")])
    url = server.base_url("binance") + "/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=1"
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(url)
    assert httpx.get(url).status_code == 200


def test_request_count_and_unknown_exchange(server: ReplayServer) -> None:
    assert server.request_count("binance") == 0
    httpx.get(server.base_url("binance") + "/api/v3/klines")  # a 400 still counts
    httpx.get(server.url + "/nowhere")  # not routed to any exchange
    assert server.request_count("binance") == 1
    with pytest.raises(KeyError):
        server.inject("okx", [Response(500)])
    with pytest.raises(KeyError):
        server.base_url("okx")


def test_stop_closes_the_port() -> None:
    with ReplayServer(DATA_DIR) as server:
        url = server.base_url("binance") + "/api/v3/klines?symbol=BTCUSDT&interval=1d&limit=1"
        with httpx.Client() as client:
            assert client.get(url).status_code == 200
            server.stop()
            # The pooled keep-alive connection must not outlive the server either.
            with pytest.raises(httpx.TransportError):
                client.get(url)


def test_missing_data_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ReplayServer(tmp_path / "nope")


# -- command line ----------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mkt_platform.replay", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cli_help() -> None:
    proc = run_cli("--help")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "--data-dir" in out


def test_cli_serves_until_interrupted() -> None:
    proc = run_cli("--data-dir", str(DATA_DIR), "--port", "0")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        name, _, base_url = line.partition(": ")
        assert name == "binance"
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/binance")
        resp = httpx.get(
            base_url + "/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1d"}
        )
        assert resp.status_code == 200
        assert len(resp.json()) == 500
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
