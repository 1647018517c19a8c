"""Tests of the Deribit replay handler (real QuantLet recording) and the SYNTHETIC generator.

The expected trades come from the CSV parsed here independently (csv module + Decimal), not
from the handler's own loader.
"""

from __future__ import annotations

import csv
import itertools
import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from mkt_platform.defs.deribit.contract import (
    OPTION_TRADE_LAKE_SCHEMA,
    decode_json,
    validate_trades,
)
from mkt_platform.defs.deribit.instruments import parse_instrument_name
from mkt_platform.replay import ReplayServer, Response
from mkt_platform.replay.deribit import TRADES_PATH, DeribitHandler
from mkt_platform.testing.synthetic_deribit import (
    synthetic_file_name,
    synthetic_trades_table,
    write_synthetic_trades,
)
from tests.conftest import SHARED_DATA

DERIBIT_DIR = SHARED_DATA / "deribit"
QUANTLET_CSV = DERIBIT_DIR / "quantlet_trades_BTC_options_2022-01-01_00-10UTC.csv"
NUMBER_FIELDS = ("price", "iv", "index_price", "amount")
RECORDED_FIELDS = {
    "trade_seq",
    "trade_id",
    "timestamp",
    "tick_direction",
    "price",
    "iv",
    "instrument_name",
    "index_price",
    "direction",
    "amount",
}


def ms(text: str) -> int:
    """UTC ISO timestamp -> epoch milliseconds."""
    return round(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


DAY_START, DAY_END = ms("2022-01-01T00:00"), ms("2022-01-01T23:59:59.999")


def load_csv() -> list[dict[str, Any]]:
    """The CSV's unique trades in Deribit's names and JSON types, ascending by trade id."""
    unique: dict[str, dict[str, str]] = {}
    with QUANTLET_CSV.open(newline="") as fh:
        for row in csv.DictReader(fh):
            assert unique.setdefault(row["trade_id"], row) == row
    trades = [
        {
            "trade_seq": int(r["trade_seq"]),
            "trade_id": r["trade_id"],
            "timestamp": int(r["t"]),
            "tick_direction": int(r["tick_direction"]),
            "price": Decimal(r["p"]),
            "iv": Decimal(r["iv"]),
            "instrument_name": r["instrument_name"],
            "index_price": Decimal(r["index_price"]),
            "direction": r["direction"],
            "amount": Decimal(r["q"]),
        }
        for r in unique.values()
    ]
    return sorted(trades, key=lambda t: int(t["trade_id"]))


CSV_TRADES = load_csv()


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(SHARED_DATA, handlers={"deribit": DeribitHandler(DERIBIT_DIR)}) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: ReplayServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url("deribit"), timeout=10) as client:
        yield client


def get(http: httpx.Client, **params: Any) -> httpx.Response:
    query = {"currency": "BTC", "kind": "option", **params}
    return http.get(TRADES_PATH, params={k: v for k, v in query.items() if v is not None})


def result(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = decode_json(response.content)
    assert body["jsonrpc"] == "2.0" and body["testnet"] is False
    assert body["usOut"] - body["usIn"] == body["usDiff"] >= 0
    return body["result"]


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["jsonrpc"] == "2.0" and "result" not in body
    return body["error"]


def page_through(http: httpx.Client, start: int, end: int, count: int) -> tuple[list, list]:
    """Page asc the way a client does: next start = last timestamp, dedup on trade_id."""
    trades: dict[str, dict[str, Any]] = {}
    pages = []
    cursor = start
    while True:
        res = result(
            get(http, start_timestamp=cursor, end_timestamp=end, count=count, sorting="asc")
        )
        page = res["trades"]
        pages.append(page)
        ids = [t["trade_id"] for t in page]
        assert len(ids) == len(set(ids)), "a page repeats a trade"
        for trade in page:
            assert trades.setdefault(trade["trade_id"], trade) == trade
        if not res["has_more"]:
            return list(trades.values()), pages
        assert page[-1]["timestamp"] > cursor
        cursor = page[-1]["timestamp"]


# --------------------------------------------------------------------------------------------
# The real recording
# --------------------------------------------------------------------------------------------


def test_csv_facts_the_tests_rely_on() -> None:
    """Guards the test data itself (SOURCES.md section 7)."""
    assert len(CSV_TRADES) == 1350
    assert sum(1 for t in CSV_TRADES if t["instrument_name"].endswith("-C")) == 854
    assert sum(t["amount"] for t in CSV_TRADES) == Decimal("2313.4")
    per_ms: dict[int, int] = defaultdict(int)
    for trade in CSV_TRADES:
        per_ms[trade["timestamp"]] += 1
    assert max(per_ms.values()) == 6  # some milliseconds hold several trades


def test_paging_the_day_with_count_100_yields_the_1350_unique_trades(http: httpx.Client) -> None:
    """Guards against lost, duplicated, re-typed or altered trades across pages."""
    trades, pages = page_through(http, DAY_START, DAY_END, count=100)
    assert len(trades) == 1350
    assert sorted(trades, key=lambda t: int(t["trade_id"])) == CSV_TRADES
    assert len(pages) >= 14
    assert all(len(page) == 100 for page in pages[:-1])
    for trade in trades:
        assert set(trade) == RECORDED_FIELDS  # no mark_price/contracts invented, no q/p/s/t/d
        for name in NUMBER_FIELDS:
            assert type(trade[name]) is Decimal, name  # a JSON float, not an int or string
        for name in ("trade_seq", "timestamp", "tick_direction"):
            assert type(trade[name]) is int, name
        assert type(trade["trade_id"]) is str


def test_asc_pages_are_in_trade_id_order(http: httpx.Client) -> None:
    """Guards the asc order (by trade id = time) and the first-count-of-range semantics."""
    res = result(
        get(http, start_timestamp=DAY_START, end_timestamp=DAY_END, count=25, sorting="asc")
    )
    assert res["trades"] == CSV_TRADES[:25]
    assert res["has_more"] is True


@pytest.mark.parametrize("sorting", [None, "default", "desc"])
def test_default_and_desc_answer_the_newest_first(http: httpx.Client, sorting: str | None) -> None:
    """Guards against desc/default answering the oldest trades or in ascending order."""
    res = result(
        get(http, start_timestamp=DAY_START, end_timestamp=DAY_END, count=7, sorting=sorting)
    )
    assert res["trades"] == CSV_TRADES[::-1][:7]
    assert res["has_more"] is True


def test_count_defaults_to_10(http: httpx.Client) -> None:
    res = result(get(http, start_timestamp=DAY_START, end_timestamp=DAY_END, sorting="asc"))
    assert len(res["trades"]) == 10


@pytest.mark.parametrize(("count", "has_more"), [(911, False), (910, True), (1000, False)])
def test_has_more_exactly_when_trades_remain(
    http: httpx.Client, count: int, has_more: bool
) -> None:
    """Guards the has_more flag at the page-size boundary (911 trades before 08:00)."""
    end = ms("2022-01-01T07:59:59.999")
    res = result(
        get(http, start_timestamp=DAY_START, end_timestamp=end, count=count, sorting="asc")
    )
    assert len(res["trades"]) == min(count, 911)
    assert res["has_more"] is has_more
    desc = result(
        get(http, start_timestamp=DAY_START, end_timestamp=end, count=count, sorting="desc")
    )
    assert desc["has_more"] is has_more


def test_bounds_are_inclusive_and_split_milliseconds(http: httpx.Client) -> None:
    """Guards inclusive start/end and has_more when a page ends inside a millisecond."""
    per_ms: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for trade in CSV_TRADES:
        per_ms[trade["timestamp"]].append(trade)
    busy_ms, busy = max(per_ms.items(), key=lambda item: len(item[1]))
    res = result(
        get(http, start_timestamp=busy_ms, end_timestamp=busy_ms, count=1000, sorting="asc")
    )
    assert res["trades"] == busy and res["has_more"] is False
    res = result(get(http, start_timestamp=busy_ms, end_timestamp=busy_ms, count=4, sorting="asc"))
    assert res["trades"] == busy[:4] and res["has_more"] is True


def test_hour_counts_match_the_recording(http: httpx.Client) -> None:
    """Guards the time filter against the per-hour counts of SOURCES.md."""
    counts = []
    for hour in range(11):
        start = DAY_START + hour * 3_600_000
        res = result(
            get(
                http,
                start_timestamp=start,
                end_timestamp=start + 3_599_999,
                count=1000,
                sorting="asc",
            )
        )
        assert res["has_more"] is False
        counts.append(len(res["trades"]))
    assert counts == [110, 128, 114, 94, 54, 220, 90, 101, 223, 148, 68]


def test_numbers_are_served_as_exact_json_floats(http: httpx.Client) -> None:
    """Guards the "5.0E-4" price and integer-looking values: exact JSON floats, no noise."""
    response = get(
        http, start_timestamp=DAY_START, end_timestamp=DAY_END, count=1000, sorting="asc"
    )
    text = response.text
    assert "E-" not in text and "e-" not in text
    assert '"price":0.0005,' in text
    # trade 197400889 is recorded with index_price "46786": Deribit sends floats.
    assert '"trade_id":"197400889"' in text
    assert '"index_price":46786.0,' in text
    assert not any(f"{c}0000000" in text for c in "123456789")  # no float artefacts


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2021-12-31T00:00", "2021-12-31T23:59:59.999"),
        ("2022-01-01T10:29:37", "2022-01-01T23:59:59.999"),
        ("2023-06-01T00:00", "2023-06-02T00:00"),
    ],
)
def test_recorded_kind_outside_the_recording_is_empty(
    http: httpx.Client, start: str, end: str
) -> None:
    """Guards the API's answer to a quiet range: no trades, has_more false (not an error)."""
    assert result(get(http, start_timestamp=ms(start), end_timestamp=ms(end), count=1000)) == {
        "trades": [],
        "has_more": False,
    }


def test_start_after_end_is_empty(http: httpx.Client) -> None:
    res = result(get(http, start_timestamp=DAY_END, end_timestamp=DAY_START, count=1000))
    assert res == {"trades": [], "has_more": False}


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"currency": "ETH"}, id="eth"),
        pytest.param({"kind": "future"}, id="futures"),
        pytest.param({"kind": "any"}, id="kind-any"),
        pytest.param({"kind": None}, id="no-kind-means-any"),
    ],
)
def test_unrecorded_currency_or_kind_is_a_replay_404(http: httpx.Client, params: dict) -> None:
    """Guards against a gap in the recordings looking like a real empty answer."""
    response = get(http, **{"start_timestamp": DAY_START, "end_timestamp": DAY_END, **params})
    err = error(response, 404)
    assert err["code"] == -1
    assert err["message"].startswith("replay:")
    assert "BTC/option" in err["message"]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"currency": "FOO"}, "currency"),
        ({"currency": ""}, "currency"),
        ({"kind": "options"}, "kind"),
        ({"count": 0}, "count"),
        ({"count": 1001}, "count"),
        ({"count": "ten"}, "count"),
        ({"sorting": "up"}, "sorting"),
        ({"include_old": "yes"}, "include_old"),
        ({"start_timestamp": None}, "start_timestamp"),
        ({"end_timestamp": "-5"}, "end_timestamp"),
    ],
)
def test_invalid_params_are_400_json_rpc_errors(
    http: httpx.Client, params: dict, param: str
) -> None:
    """Guards Deribit's error shape and code -32602 for each parameter."""
    query = {"start_timestamp": DAY_START, "end_timestamp": DAY_END, **params}
    err = error(get(http, **query), 400)
    assert err["code"] == -32602
    assert err["message"] == "Invalid params"
    assert err["data"]["param"] == param


def test_start_timestamp_in_the_future_is_400(http: httpx.Client) -> None:
    """Guards the emulation of Deribit's 400 for a start_timestamp after now."""
    future = int(time.time() * 1000) + 86_400_000
    err = error(get(http, start_timestamp=future, end_timestamp=future + 1000), 400)
    assert err["code"] == -32602
    assert err["data"] == {"reason": "start_timestamp is in the future", "param": "start_timestamp"}


def test_include_old_is_accepted(http: httpx.Client) -> None:
    for value in ("true", "false"):
        res = result(
            get(http, start_timestamp=DAY_START, end_timestamp=DAY_END, count=3, include_old=value)
        )
        assert len(res["trades"]) == 3


def test_max_age_emulates_the_live_24h_window() -> None:
    """Guards the optional live-API window: old ranges answer nothing, without error."""
    now = ms("2022-01-01T12:00") / 1000
    handler = DeribitHandler(DERIBIT_DIR, clock=lambda: now, max_age_ms=3_600_000)
    query = {"currency": ["BTC"], "kind": ["option"], "count": ["1000"], "sorting": ["asc"]}
    old = handler.handle(
        "GET",
        TRADES_PATH,
        {**query, "start_timestamp": [str(DAY_START)], "end_timestamp": [str(DAY_END)]},
        b"",
    )
    assert json.loads(old.body)["result"] == {"trades": [], "has_more": False}
    unbounded = DeribitHandler(DERIBIT_DIR, clock=lambda: now)
    full = unbounded.handle(
        "GET",
        TRADES_PATH,
        {**query, "start_timestamp": [str(DAY_START)], "end_timestamp": [str(DAY_END)]},
        b"",
    )
    assert len(json.loads(full.body)["result"]["trades"]) == 1000


def test_wrong_route_and_method(http: httpx.Client) -> None:
    assert error(http.get("/api/v2/public/get_instruments"), 404)["message"].startswith("replay:")
    response = http.post(TRADES_PATH, json={})
    assert response.status_code == 405 and response.headers["Allow"] == "GET"


def test_injected_responses_come_first(server: ReplayServer, http: httpx.Client) -> None:
    """Guards that the handler works with the server's fault injection and request log."""
    before = len(server.requests("deribit"))
    server.inject(
        "deribit",
        [
            Response.json(
                {"jsonrpc": "2.0", "error": {"code": 10028, "message": "too_many_requests"}}, 429
            )
        ],
    )
    assert get(http, start_timestamp=DAY_START, end_timestamp=DAY_END).status_code == 429
    assert get(http, start_timestamp=DAY_START, end_timestamp=DAY_END).status_code == 200
    requests = server.requests("deribit")[before:]
    assert [r.path for r in requests] == [TRADES_PATH] * 2
    assert requests[0].query["currency"] == ["BTC"]


# --------------------------------------------------------------------------------------------
# SYNTHETIC days
# --------------------------------------------------------------------------------------------

SYN_DAY = date(2024, 3, 14)


def synthetic_lines(path: Path) -> list[dict[str, Any]]:
    return [decode_json(line) for line in path.read_text().splitlines()]


def test_synthetic_file_is_labelled_and_refuses_unlabelled_names(tmp_path: Path) -> None:
    path = write_synthetic_trades(tmp_path, SYN_DAY, 10, seed=1)
    assert (
        path.name
        == synthetic_file_name(SYN_DAY)
        == "SYNTHETIC_deribit_trades_BTC_option_2024-03-14.jsonl"
    )
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left
    with pytest.raises(ValueError, match="SYNTHETIC"):
        write_synthetic_trades(tmp_path / "trades.jsonl", SYN_DAY, 10, seed=1)


def test_synthetic_trades_have_deribit_format_and_pass_the_contract(tmp_path: Path) -> None:
    """Guards the generator's format: every trade passes the contract, fields are realistic."""
    n = 5000
    trades = synthetic_lines(write_synthetic_trades(tmp_path, SYN_DAY, n, seed=7))
    assert len(trades) == n
    validated = validate_trades(trades, "synthetic file")
    assert validated.rejected == [] and validated.added_fields == []
    assert validated.table.num_rows == n
    fields = RECORDED_FIELDS | {"mark_price", "contracts"}
    day_start = ms("2024-03-14T00:00")
    ids = [int(t["trade_id"]) for t in trades]
    assert ids == sorted(set(ids)) and ids[0] >= 3_000_000_000
    stamps = [t["timestamp"] for t in trades]
    assert stamps == sorted(stamps)
    assert day_start <= stamps[0] and stamps[-1] < day_start + 86_400_000
    assert stamps[-1] - stamps[0] > 20 * 3_600_000  # spread across the day
    assert len(set(stamps)) < n  # some trades share a millisecond, as real ones do
    by_instrument: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for trade in trades:
        assert set(trade) == fields
        assert trade["contracts"] == trade["amount"]
        assert (trade["price"] / Decimal("0.0001")) % 1 == 0 and trade["price"] > 0
        assert (trade["amount"] / Decimal("0.1")) % 1 == 0 and trade["amount"] > 0
        assert 30 <= trade["iv"] <= 150
        assert 30_000 < trade["index_price"] < 50_000
        assert trade["direction"] in ("buy", "sell")
        instrument = parse_instrument_name(trade["instrument_name"])
        assert instrument.expiry.date() > SYN_DAY
        by_instrument[trade["instrument_name"]].append(trade)
    expiries = {parse_instrument_name(name).expiry for name in by_instrument}
    assert len(expiries) >= 5
    assert len(by_instrument) > 50
    for series in by_instrument.values():
        seqs = [t["trade_seq"] for t in series]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        for before, after in itertools.pairwise(series):
            expected = {1: {0}, -1: {2}, 0: {1, 3}}[
                (after["price"] > before["price"]) - (after["price"] < before["price"])
            ]
            assert after["tick_direction"] in expected


def test_synthetic_table_is_the_file_in_the_lake_schema(tmp_path: Path) -> None:
    """Guards that the Parquet-bound table and the JSON file hold the very same trades."""
    n = 3000
    trades = synthetic_lines(write_synthetic_trades(tmp_path, SYN_DAY, n, seed=3))
    table = synthetic_trades_table(SYN_DAY, n, seed=3)
    assert table.schema.remove_metadata().equals(OPTION_TRADE_LAKE_SCHEMA.remove_metadata())
    assert table.schema.metadata[b"synthetic"] == b"true"
    assert table.to_pylist() == validate_trades(trades, "synthetic file").table.to_pylist()


def test_synthetic_generation_is_deterministic_per_seed_and_day(tmp_path: Path) -> None:
    a = synthetic_trades_table(SYN_DAY, 500, seed=1)
    assert a.equals(synthetic_trades_table(SYN_DAY, 500, seed=1))
    assert not a.equals(synthetic_trades_table(SYN_DAY, 500, seed=2))
    other_day = synthetic_trades_table(SYN_DAY + timedelta(days=1), 500, seed=1)
    assert set(a["trade_id"].to_pylist()).isdisjoint(other_day["trade_id"].to_pylist())


def test_200k_trades_are_fast(tmp_path: Path) -> None:
    """Guards the benchmark use: 200,000 trades written and tabled in well under 20 s."""
    started = time.perf_counter()
    path = write_synthetic_trades(tmp_path, SYN_DAY, 200_000, seed=11)
    table = synthetic_trades_table(SYN_DAY, 200_000, seed=11)
    elapsed = time.perf_counter() - started
    assert elapsed < 20
    with path.open("rb") as fh:
        assert sum(1 for _ in fh) == 200_000
    assert table.num_rows == 200_000
    assert isinstance(table, pa.Table)


def test_handler_serves_a_synthetic_day_and_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Guards serving SYNTHETIC days line for line, with exactly one SYNTHETIC warning."""
    path = write_synthetic_trades(tmp_path, SYN_DAY, 2500, seed=5)
    expected = synthetic_lines(path)
    handler = DeribitHandler(tmp_path)
    start, end = ms("2024-03-14T00:00"), ms("2024-03-14T23:59:59.999")
    caplog.set_level(logging.WARNING, logger="mkt_platform.replay.deribit")
    with (
        ReplayServer(tmp_path, handlers={"deribit": handler}) as srv,
        httpx.Client(base_url=srv.base_url("deribit")) as client,
    ):
        trades, pages = page_through(client, start, end, count=1000)
        assert (
            get(
                client, start_timestamp=ms("2024-03-15T00:00"), end_timestamp=ms("2024-03-15T23:59")
            ).json()["result"]["trades"]
            == []
        )
    assert sorted(trades, key=lambda t: int(t["trade_id"])) == expected
    assert len(pages) == 3
    warnings = [r for r in caplog.records if "SYNTHETIC" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert path.name in warnings[0].getMessage()


def test_synthetic_day_overlapping_the_real_recording_is_refused(tmp_path: Path) -> None:
    """Guards against SYNTHETIC trades being mixed into a real recorded day."""
    (tmp_path / QUANTLET_CSV.name).symlink_to(QUANTLET_CSV)
    write_synthetic_trades(tmp_path, date(2022, 1, 1), 10, seed=1)
    handler = DeribitHandler(tmp_path)
    query = {
        "currency": ["BTC"],
        "kind": ["option"],
        "start_timestamp": [str(DAY_START)],
        "end_timestamp": [str(DAY_END)],
    }
    with pytest.raises(ValueError, match="overlap"):
        handler.handle("GET", TRADES_PATH, query, b"")
