"""Tests of ReplayServer.mutate / clear_mutations and of mkt_platform.testing.mutations, on the
real recordings in shared/data.

Every expected answer is derived from the unmutated answer of the same request.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from mkt_platform.replay import RecordedRequest, ReplayServer, Response
from mkt_platform.replay.deribit import TRADES_PATH, DeribitHandler
from mkt_platform.replay.server import ExchangeHandler, default_handlers
from mkt_platform.testing.mutations import (
    add_field,
    drop_field,
    matching,
    record_time,
    records,
    set_field,
    stringify_field,
    truncate_from,
)
from tests.conftest import SHARED_DATA


def ms(text: str) -> int:
    """UTC ISO timestamp -> epoch milliseconds."""
    return round(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


# Deribit answers carry usIn/usOut from the handler's clock; a fixed clock (the day after the
# recorded one) makes them byte for byte repeatable.
DERIBIT_NOW_S = ms("2022-01-02T00:00") / 1000

KLINES_DAY = (ms("2023-03-24T00:00"), ms("2023-03-24T23:59:59.999"))
HL_CANDLES = {
    "type": "candleSnapshot",
    "req": {
        "coin": "kPEPE",
        "interval": "1h",
        "startTime": ms("2023-05-21T20:00"),
        "endTime": ms("2023-05-22T19:00"),
    },
}
HL_FUNDING = {
    "type": "fundingHistory",
    "coin": "BTC",
    "startTime": ms("2023-06-06T00:00"),
    "endTime": ms("2023-06-10T23:59:59.999"),
}
DERIBIT_DAY = (ms("2022-01-01T00:00"), ms("2022-01-01T23:59:59.999"))

#: Request name -> exchange it goes to.
EXCHANGE = {
    "klines": "binance",
    "candles": "hyperliquid",
    "funding": "hyperliquid",
    "ctxs": "hyperliquid",
    "trades": "deribit_history",
}


@pytest.fixture(scope="module")
def handlers() -> dict[str, ExchangeHandler]:
    """The default handlers, loaded once for the module, with a fixed Deribit clock."""
    return {
        **default_handlers(SHARED_DATA),
        "deribit_history": DeribitHandler(SHARED_DATA / "deribit", clock=lambda: DERIBIT_NOW_S),
    }


@pytest.fixture
def server(handlers: dict[str, ExchangeHandler]) -> Iterator[ReplayServer]:
    """A fresh server (no mutations, nothing injected) over the shared handlers."""
    with ReplayServer(SHARED_DATA, handlers=handlers) as srv:
        yield srv


@pytest.fixture
def http(server: ReplayServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


def klines(http: httpx.Client, symbol: str = "BTCUSDT", **params: Any) -> httpx.Response:
    start, end = KLINES_DAY
    query = {"symbol": symbol, "interval": "1h", "startTime": start, "endTime": end}
    return http.get("/binance/api/v3/klines", params={**query, **params})


def info(http: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return http.post("/hyperliquid/info", json=body)


def trades(http: httpx.Client, **params: Any) -> httpx.Response:
    start, end = DERIBIT_DAY
    query = {
        "currency": "BTC",
        "kind": "option",
        "start_timestamp": start,
        "end_timestamp": end,
        "count": 1000,
    }
    return http.get(f"/deribit_history{TRADES_PATH}", params={**query, **params})


def fetch(http: httpx.Client, name: str) -> httpx.Response:
    """One of the recorded requests the tests use, by name (see ``EXCHANGE``)."""
    if name == "klines":
        return klines(http)
    if name == "candles":
        return info(http, HL_CANDLES)
    if name == "funding":
        return info(http, HL_FUNDING)
    if name == "ctxs":
        return info(http, {"type": "metaAndAssetCtxs"})
    if name == "trades":
        return trades(http)
    raise AssertionError(name)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def as_text(response: httpx.Response) -> Any:
    """The body decoded with every number kept as the text the server wrote."""
    return json.loads(response.content, parse_int=str, parse_float=str)


def recorder() -> tuple[list[RecordedRequest], Callable[[RecordedRequest, Any], Any]]:
    """A mutation that changes nothing and records the requests it was called for."""
    calls: list[RecordedRequest] = []

    def mutation(request: RecordedRequest, payload: Any) -> Any:
        calls.append(request)
        return payload

    return calls, mutation


# -- the server hook -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXCHANGE))
def test_without_mutations_the_handler_answer_is_served_byte_for_byte(
    server: ReplayServer, http: httpx.Client, handlers: dict[str, ExchangeHandler], name: str
) -> None:
    served = fetch(http, name)
    (request,) = server.requests(EXCHANGE[name])
    direct = handlers[EXCHANGE[name]].handle(
        request.method, request.path, request.query, request.body
    )
    assert served.status_code == direct.status == 200
    assert served.content == direct.body
    assert served.headers["Content-Type"] == direct.headers["Content-Type"]


@pytest.mark.parametrize("name", sorted(EXCHANGE))
def test_clear_mutations_restores_the_byte_identical_answer(
    server: ReplayServer, http: httpx.Client, name: str
) -> None:
    exchange = EXCHANGE[name]
    original = fetch(http, name).content
    server.mutate(exchange, lambda request, payload: {"replaced": True})
    assert ok(fetch(http, name)) == {"replaced": True}
    server.clear_mutations(exchange)
    assert fetch(http, name).content == original


@pytest.mark.parametrize("name", sorted(EXCHANGE))
def test_a_mutation_that_changes_nothing_keeps_the_recorded_bytes(
    server: ReplayServer, http: httpx.Client, name: str
) -> None:
    """Decoding and compact re-encoding is lossless for these recordings, so "nothing else
    changes" below also holds byte for byte."""
    original = fetch(http, name)
    calls, mutation = recorder()
    server.mutate(EXCHANGE[name], mutation)
    mutated = fetch(http, name)
    assert len(calls) == 1
    assert mutated.content == original.content
    assert mutated.headers["Content-Type"] == original.headers["Content-Type"]
    assert mutated.headers["Content-Length"] == str(len(original.content))


def test_mutations_compose_in_the_order_added_and_see_the_request(
    server: ReplayServer, http: httpx.Client
) -> None:
    original = ok(klines(http))
    server.mutate("binance", lambda request, payload: {"first": payload})
    server.mutate(
        "binance", lambda request, payload: [payload, request.path, request.query["symbol"]]
    )
    assert ok(klines(http)) == [{"first": original}, "/api/v3/klines", ["BTCUSDT"]]


def test_mutations_apply_to_their_exchange_only(server: ReplayServer, http: httpx.Client) -> None:
    funding = info(http, HL_FUNDING).content
    server.mutate("binance", truncate_from(0))
    server.mutate("deribit_history", truncate_from(0))
    assert ok(klines(http)) == []
    assert ok(trades(http))["result"]["trades"] == []
    assert info(http, HL_FUNDING).content == funding


def test_clear_mutations_of_one_exchange_or_all(server: ReplayServer, http: httpx.Client) -> None:
    original_klines = klines(http).content
    original_funding = info(http, HL_FUNDING).content
    server.mutate("binance", truncate_from(0))
    server.mutate("hyperliquid", truncate_from(0))
    server.clear_mutations("hyperliquid")
    assert info(http, HL_FUNDING).content == original_funding
    assert ok(klines(http)) == []
    server.mutate("hyperliquid", truncate_from(0))
    server.clear_mutations()
    assert klines(http).content == original_klines
    assert info(http, HL_FUNDING).content == original_funding


def test_mutate_and_clear_reject_unknown_exchanges_and_non_callables(
    server: ReplayServer,
) -> None:
    with pytest.raises(KeyError, match="kraken"):
        server.mutate("kraken", truncate_from(0))
    with pytest.raises(KeyError, match="kraken"):
        server.clear_mutations("kraken")
    with pytest.raises(TypeError, match="callable"):
        server.mutate("binance", "truncate")  # type: ignore[arg-type]


def test_injected_responses_are_not_mutated(server: ReplayServer, http: httpx.Client) -> None:
    original = ok(klines(http))
    calls, mutation = recorder()
    server.mutate("binance", mutation)
    server.mutate("binance", truncate_from(0))
    canned = Response.raw_json(b'[ [1, "2"] ]')
    server.inject("binance", [canned])
    injected = klines(http)
    assert injected.status_code == 200
    assert injected.content == canned.body
    assert calls == []
    # Once the queue is empty, replay resumes, mutated.
    assert original != []
    assert ok(klines(http)) == []
    assert len(calls) == 1


def test_error_answers_pass_through_unmutated(server: ReplayServer, http: httpx.Client) -> None:
    def errors(client: httpx.Client) -> list[httpx.Response]:
        return [
            klines(client, limit=5000),
            klines(client, symbol="NOPEUSDT"),
            info(client, {**HL_FUNDING, "coin": "NOPE"}),
            info(client, {"type": "nope"}),
            trades(client, count=0),
            trades(client, currency="ETH"),
        ]

    original = errors(http)
    assert [r.status_code for r in original] == [400, 400, 404, 400, 400, 404]
    calls, mutation = recorder()
    for exchange in server.exchanges:
        server.mutate(exchange, mutation)
        server.mutate(exchange, lambda request, payload: {"mutated": True})
    mutated = errors(http)
    assert calls == []
    assert [(r.status_code, r.content) for r in mutated] == [
        (r.status_code, r.content) for r in original
    ]


def test_non_json_answers_pass_through_and_headers_are_kept() -> None:
    class TextHandler:
        def handle(
            self, method: str, path: str, query: dict[str, list[str]], body: bytes
        ) -> Response:
            if path == "/text":
                return Response(200, {"Content-Type": "text/plain"}, b"[1, 2]")
            return Response.raw_json(b"[1, 2]", headers={"X-Replay-Test": "kept"})

    calls, mutation = recorder()
    with (
        ReplayServer(SHARED_DATA, handlers={"plain": TextHandler()}) as srv,
        httpx.Client(base_url=srv.base_url("plain"), timeout=10) as client,
    ):
        srv.mutate("plain", mutation)
        srv.mutate("plain", lambda request, payload: [*payload, 3])
        text = client.get("/text")
        assert text.content == b"[1, 2]"
        assert calls == []
        mutated = client.get("/json")
        assert mutated.content == b"[1,2,3]"
        assert mutated.headers["X-Replay-Test"] == "kept"
        assert mutated.headers["Content-Type"] == "application/json;charset=UTF-8"
        assert mutated.headers["Content-Length"] == "7"
        assert len(calls) == 1


def test_a_failing_mutation_answers_500(server: ReplayServer, http: httpx.Client) -> None:
    def broken(request: RecordedRequest, payload: Any) -> Any:
        raise RuntimeError("boom")

    server.mutate("binance", broken)
    response = klines(http)
    assert response.status_code == 500
    assert "replay: internal error: boom" in response.json()["msg"]


def test_mutations_can_change_while_requests_are_served(
    server: ReplayServer, http: httpx.Client
) -> None:
    original = klines(http).content
    server.mutate("binance", truncate_from(KLINES_DAY[0] + 12 * 3_600_000))
    truncated = klines(http).content
    server.clear_mutations()
    assert truncated != original
    seen: list[bytes] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def pull() -> None:
        try:
            with httpx.Client(base_url=server.url, timeout=10) as client:
                while not stop.is_set():
                    response = klines(client)
                    assert response.status_code == 200, response.text
                    seen.append(response.content)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=pull) for _ in range(3)]
    for thread in threads:
        thread.start()
    # Toggle until both answers were served a few times (or give up after 20 s).
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not failures:
        if len(seen) >= 40 and {original, truncated} <= set(seen):
            break
        server.mutate("binance", truncate_from(KLINES_DAY[0] + 12 * 3_600_000))
        time.sleep(0.002)
        server.clear_mutations("binance")
        time.sleep(0.002)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    assert failures == []
    assert set(seen) == {original, truncated}


# -- records and times -----------------------------------------------------------------------


def test_records_and_times_of_each_recorded_answer(http: httpx.Client) -> None:
    kl = ok(klines(http))
    assert records(kl) is kl
    assert [record_time(r) for r in kl] == [r[0] for r in kl]
    candles = ok(info(http, HL_CANDLES))
    assert records(candles) is candles
    assert [record_time(c) for c in candles] == [c["t"] for c in candles]
    funding = ok(info(http, HL_FUNDING))
    assert [record_time(f) for f in records(funding)] == [f["time"] for f in funding]
    ctxs = ok(info(http, {"type": "metaAndAssetCtxs"}))
    assert records(ctxs) is ctxs[1]
    assert {record_time(c) for c in records(ctxs)} == {None}
    day = ok(trades(http))
    assert records(day) is day["result"]["trades"]
    assert [record_time(t) for t in records(day)] == [t["timestamp"] for t in records(day)]
    assert records(ok(info(http, {"type": "meta"}))) == []


# -- truncate_from ---------------------------------------------------------------------------


def test_truncate_from_serves_the_klines_day_truncated_then_complete(
    server: ReplayServer, http: httpx.Client
) -> None:
    original = klines(http)
    rows = ok(original)
    cutoff = ms("2023-03-24T15:00")
    expected = [row for row in rows if row[0] < cutoff]
    assert 0 < len(expected) < len(rows)
    server.mutate("binance", truncate_from(cutoff))
    truncated = klines(http)
    assert ok(truncated) == expected
    assert truncated.headers["Content-Length"] == str(len(truncated.content))
    assert truncated.headers["Content-Type"] == original.headers["Content-Type"]
    # A cutoff between open times keeps the kline that opened before it.
    server.clear_mutations()
    server.mutate("binance", truncate_from(cutoff + 1))
    assert ok(klines(http)) == [*expected, next(r for r in rows if r[0] == cutoff)]
    server.clear_mutations()
    assert klines(http).content == original.content


@pytest.mark.parametrize(
    ("name", "key", "cutoff"),
    [
        ("candles", "t", ms("2023-05-22T03:00")),
        ("funding", "time", ms("2023-06-08T12:00")),
    ],
)
def test_truncate_from_hyperliquid_records(
    server: ReplayServer, http: httpx.Client, name: str, key: str, cutoff: int
) -> None:
    rows = ok(fetch(http, name))
    expected = [row for row in rows if row[key] < cutoff]
    assert 0 < len(expected) < len(rows)
    server.mutate("hyperliquid", truncate_from(cutoff))
    assert ok(fetch(http, name)) == expected


def test_truncate_from_leaves_answers_without_timed_records_alone(
    server: ReplayServer, http: httpx.Client
) -> None:
    meta = info(http, {"type": "meta"}).content
    ctxs = info(http, {"type": "metaAndAssetCtxs"}).content
    server.mutate("hyperliquid", truncate_from(0))
    assert ok(info(http, HL_FUNDING)) == []
    assert info(http, {"type": "meta"}).content == meta
    assert info(http, {"type": "metaAndAssetCtxs"}).content == ctxs


def test_truncate_from_deribit_stops_paging_only_when_trades_are_dropped(
    server: ReplayServer, http: httpx.Client
) -> None:
    original = trades(http, sorting="asc")
    page = ok(original)
    assert page["result"]["has_more"] is True  # the day has more than 1000 trades
    rows = page["result"]["trades"]
    cutoff = rows[600]["timestamp"]
    kept = [t for t in rows if t["timestamp"] < cutoff]
    assert 0 < len(kept) < len(rows)
    server.mutate("deribit_history", truncate_from(cutoff))
    expected = copy.deepcopy(page)
    expected["result"] = {"trades": kept, "has_more": False}
    assert ok(trades(http, sorting="asc")) == expected
    # Nothing dropped: has_more is left as the exchange said.
    server.clear_mutations()
    server.mutate("deribit_history", truncate_from(rows[-1]["timestamp"] + 1))
    assert trades(http, sorting="asc").content == original.content


# -- set_field -------------------------------------------------------------------------------


def test_set_field_with_match_changes_only_the_matched_kline(
    server: ReplayServer, http: httpx.Client
) -> None:
    rows = ok(klines(http))
    target = rows[5]
    server.mutate(
        "binance",
        set_field(4, lambda old: str(Decimal(old) + 1), match=lambda row: row[0] == target[0]),
    )
    got = ok(klines(http))
    expected = copy.deepcopy(rows)
    expected[5][4] = str(Decimal(target[4]) + 1)
    assert got[5][4] != rows[5][4]
    assert got == expected


def test_set_field_without_match_changes_every_record(
    server: ReplayServer, http: httpx.Client
) -> None:
    candles = ok(info(http, HL_CANDLES))
    server.mutate("hyperliquid", set_field("c", "1.5"))
    got = ok(info(http, HL_CANDLES))
    assert all(c["c"] != "1.5" for c in candles)
    assert got == [{**c, "c": "1.5"} for c in candles]


def test_set_field_with_match_on_deribit_trades(server: ReplayServer, http: httpx.Client) -> None:
    page = ok(trades(http))
    target = page["result"]["trades"][3]
    server.mutate(
        "deribit_history",
        set_field(
            "price", lambda old: old * 2, match=lambda t: t["trade_id"] == target["trade_id"]
        ),
    )
    expected = copy.deepcopy(page)
    expected["result"]["trades"][3]["price"] = target["price"] * 2
    assert ok(trades(http)) == expected


# -- add_field, drop_field, stringify_field --------------------------------------------------


def test_add_field_appends_to_arrays(server: ReplayServer, http: httpx.Client) -> None:
    rows = ok(klines(http))
    assert {len(row) for row in rows} == {12}
    server.mutate("binance", add_field(12, "1.25"))
    assert ok(klines(http)) == [[*row, "1.25"] for row in rows]


@pytest.mark.parametrize("name", ["funding", "trades"])
def test_add_field_adds_a_key_to_objects(
    server: ReplayServer, http: httpx.Client, name: str
) -> None:
    page = ok(fetch(http, name))
    assert records(page)
    assert all("nextField" not in record for record in records(page))
    server.mutate(EXCHANGE[name], add_field("nextField", {"v": 1}))
    expected = copy.deepcopy(page)
    for record in records(expected):
        record["nextField"] = {"v": 1}
    assert ok(fetch(http, name)) == expected


def test_drop_field_removes_a_position_from_arrays(
    server: ReplayServer, http: httpx.Client
) -> None:
    rows = ok(klines(http))
    server.mutate("binance", drop_field(5))
    assert ok(klines(http)) == [row[:5] + row[6:] for row in rows]


@pytest.mark.parametrize(("name", "key"), [("funding", "premium"), ("trades", "iv")])
def test_drop_field_removes_a_key_from_objects(
    server: ReplayServer, http: httpx.Client, name: str, key: str
) -> None:
    page = ok(fetch(http, name))
    assert records(page)
    assert all(key in record for record in records(page))
    server.mutate(EXCHANGE[name], drop_field(key))
    expected = copy.deepcopy(page)
    for record in records(expected):
        del record[key]
    assert ok(fetch(http, name)) == expected


def test_drop_field_on_asset_contexts_keeps_the_meta(
    server: ReplayServer, http: httpx.Client
) -> None:
    meta, ctxs = ok(info(http, {"type": "metaAndAssetCtxs"}))
    assert ctxs
    assert all("markPx" in ctx for ctx in ctxs)
    server.mutate("hyperliquid", drop_field("markPx"))
    got_meta, got_ctxs = ok(info(http, {"type": "metaAndAssetCtxs"}))
    assert got_meta == meta
    assert got_ctxs == [{k: v for k, v in ctx.items() if k != "markPx"} for ctx in ctxs]


def test_stringify_field_on_arrays(server: ReplayServer, http: httpx.Client) -> None:
    original = klines(http)
    rows, text = ok(original), as_text(original)
    assert all(type(row[8]) is int for row in rows)  # number of trades
    server.mutate("binance", stringify_field(8))
    expected = copy.deepcopy(rows)
    for row, row_text in zip(expected, text, strict=True):
        row[8] = row_text[8]
    got = ok(klines(http))
    assert got == expected
    assert got[0][8] == str(rows[0][8])
    # A field that already is a string is left alone.
    server.clear_mutations()
    server.mutate("binance", stringify_field(1))
    assert klines(http).content == original.content


@pytest.mark.parametrize(("name", "key"), [("funding", "time"), ("trades", "price")])
def test_stringify_field_on_objects_gives_the_number_as_written(
    server: ReplayServer, http: httpx.Client, name: str, key: str
) -> None:
    original = fetch(http, name)
    page, text = ok(original), as_text(original)
    assert all(type(record[key]) in (int, float) for record in records(page))
    server.mutate(EXCHANGE[name], stringify_field(key))
    expected = copy.deepcopy(page)
    for record, record_text in zip(records(expected), records(text), strict=True):
        record[key] = record_text[key]
    got = ok(fetch(http, name))
    assert got == expected
    assert all(type(record[key]) is str for record in records(got))


# -- when ------------------------------------------------------------------------------------


def test_when_restricts_a_mutation_to_some_requests(
    server: ReplayServer, http: httpx.Client
) -> None:
    btc = klines(http).content
    eth = ok(klines(http, symbol="ETHUSDT"))
    cutoff = ms("2023-03-24T06:00")
    server.mutate("binance", truncate_from(cutoff, when=matching(symbol="ETHUSDT")))
    assert klines(http).content == btc
    assert ok(klines(http, symbol="ETHUSDT")) == [row for row in eth if row[0] < cutoff]


def test_when_with_json_bodies(server: ReplayServer, http: httpx.Client) -> None:
    candles = ok(info(http, HL_CANDLES))
    funding = info(http, HL_FUNDING).content
    # matching() finds the candle coin in the body's "req" object.
    server.mutate("hyperliquid", stringify_field("n", when=matching(coin="kPEPE")))
    server.mutate("hyperliquid", add_field("x", 1, when=matching(coin="ETH")))
    assert info(http, HL_FUNDING).content == funding
    assert ok(info(http, HL_CANDLES)) == [{**c, "n": str(c["n"])} for c in candles]


def test_when_with_a_custom_predicate(server: ReplayServer, http: httpx.Client) -> None:
    day = trades(http).content
    asc = ok(trades(http, sorting="asc"))
    server.mutate(
        "deribit_history",
        drop_field("direction", when=lambda request: request.query.get("sorting") == ["asc"]),
    )
    assert trades(http).content == day
    got = ok(trades(http, sorting="asc"))
    assert got["result"]["trades"] == [
        {k: v for k, v in t.items() if k != "direction"} for t in asc["result"]["trades"]
    ]


def test_matching_reads_query_strings_and_bodies() -> None:
    get = RecordedRequest("GET", "/api/v3/klines", {"symbol": ["BTCUSDT"], "limit": ["5"]}, b"")
    post = RecordedRequest("POST", "/info", {}, json.dumps(HL_CANDLES).encode())
    assert matching(symbol="BTCUSDT", limit=5)(get)
    assert not matching(symbol="ETHUSDT")(get)
    assert not matching(coin="BTCUSDT")(get)
    assert matching(type="candleSnapshot", coin="kPEPE", interval="1h")(post)
    assert not matching(coin="BTC")(post)
    assert not matching(coin="kPEPE")(RecordedRequest("POST", "/info", {}, b"not json"))
