"""Tests of DeribitClient.iter_option_trade_pages over the Deribit replay of the real recording.

The replay serves the QuantLet CSV (2022-01-01 00:00-10:29 UTC, 1350 unique trades) at two
mounts, ``deribit`` (live API) and ``deribit_history``; canned responses are injected in
front of it for faults and malformed pages. Expected values come from the CSV parsed here.
"""

from __future__ import annotations

import csv
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pyarrow as pa
import pytest

from mkt_platform.defs.deribit.contract import DATASET, OPTION_TRADE_LAKE_SCHEMA
from mkt_platform.defs.deribit.instruments import parse_instrument_name
from mkt_platform.defs.deribit.resources import (
    TRADES_PATH,
    DeribitAPIError,
    DeribitClient,
    DeribitPagingError,
    DeribitRetryableResponse,
    DeribitTransportError,
    TradePage,
)
from mkt_platform.lib.contracts import ContractViolation, MalformedResponse
from mkt_platform.replay import RecordedRequest, ReplayServer, Response
from mkt_platform.replay.deribit import DeribitHandler
from tests.conftest import SHARED_DATA

DERIBIT_DIR = SHARED_DATA / "deribit"
QUANTLET_CSV = DERIBIT_DIR / "quantlet_trades_BTC_options_2022-01-01_00-10UTC.csv"


def ms(text: str) -> int:
    return round(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


DAY = (ms("2022-01-01T00:00"), ms("2022-01-01T23:59:59.999"))


def load_csv() -> list[dict[str, str]]:
    """The CSV's unique rows, ascending by trade id (= time)."""
    unique: dict[str, dict[str, str]] = {}
    with QUANTLET_CSV.open(newline="") as fh:
        for row in csv.DictReader(fh):
            unique.setdefault(row["trade_id"], row)
    return sorted(unique.values(), key=lambda r: int(r["trade_id"]))


CSV_ROWS = load_csv()


def expected_row(r: dict[str, str]) -> dict[str, Any]:
    """A CSV row as the lake table row it must become."""
    instrument = parse_instrument_name(r["instrument_name"])
    return {
        "trade_id": r["trade_id"],
        "trade_seq": int(r["trade_seq"]),
        "timestamp": datetime.fromtimestamp(int(r["t"]) / 1000, UTC),
        "instrument_name": r["instrument_name"],
        "direction": r["direction"],
        "price": Decimal(r["p"]),
        "amount": Decimal(r["q"]),
        "iv": float(r["iv"]),
        "mark_price": None,
        "index_price": Decimal(r["index_price"]),
        "tick_direction": int(r["tick_direction"]),
        "expiry": instrument.expiry,
        "strike": instrument.strike,
        "option_type": instrument.option_type,
        "block_trade_id": None,
        "liquidation": None,
    }


def raw_trade(r: dict[str, str]) -> dict[str, Any]:
    """A CSV row as a Deribit trade object (floats print back to the same decimal text)."""
    return {
        "trade_seq": int(r["trade_seq"]),
        "trade_id": r["trade_id"],
        "timestamp": int(r["t"]),
        "tick_direction": int(r["tick_direction"]),
        "price": float(r["p"]),
        "iv": float(r["iv"]),
        "instrument_name": r["instrument_name"],
        "index_price": float(r["index_price"]),
        "direction": r["direction"],
        "amount": float(r["q"]),
    }


def jsonrpc(trades: list[dict[str, Any]], has_more: bool) -> Response:
    return Response.json(
        {
            "jsonrpc": "2.0",
            "result": {"trades": trades, "has_more": has_more},
            "usIn": 1,
            "usOut": 2,
            "usDiff": 1,
            "testnet": False,
        }
    )


def rows(pages: list[TradePage]) -> list[dict[str, Any]]:
    return [row for page in pages for row in page.table.to_pylist()]


MOUNTS = ("deribit", "deribit_history")


def plain_http() -> httpx.HTTPTransport:
    """A transport for the local http:// replay (no TLS: skips loading CA certificates)."""
    return httpx.HTTPTransport(verify=False)


class Replay:
    """The shared replay server as one test sees it: its own requests, its own injections."""

    def __init__(self, server: ReplayServer) -> None:
        self.server = server
        self._offsets = {mount: len(server.requests(mount)) for mount in MOUNTS}

    def base_url(self, mount: str) -> str:
        return self.server.base_url(mount)

    def inject(self, responses: list[Response], mount: str = "deribit_history") -> None:
        self.server.inject(mount, responses)

    def requests(self, mount: str) -> list[RecordedRequest]:
        return self.server.requests(mount)[self._offsets[mount] :]

    def drain(self) -> int:
        """Consume injected answers a test left unused; how many there were."""
        left = 0
        with httpx.Client(transport=plain_http()) as http:
            for mount in MOUNTS:
                while "no route" not in http.get(self.base_url(mount) + "/probe").text:
                    left += 1
        return left


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    handlers = {mount: DeribitHandler(DERIBIT_DIR) for mount in MOUNTS}
    with ReplayServer(SHARED_DATA, handlers=handlers) as srv:
        yield srv


@pytest.fixture
def replay(server: ReplayServer) -> Iterator[Replay]:
    """One server for the module (fast); every injected answer must be used by its test."""
    view = Replay(server)
    yield view
    assert view.drain() == 0, "the test left injected responses unused"


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def make_client(replay: Replay, waits: list[float]) -> Callable[..., DeribitClient]:
    def make(**config: Any) -> DeribitClient:
        client = DeribitClient(
            base_url=replay.base_url("deribit"),
            history_base_url=replay.base_url("deribit_history"),
            **{"max_attempts": 4, **config},
        )
        return client.with_transport(plain_http(), sleep=waits.append)

    return make


@pytest.fixture
def client(make_client: Callable[..., DeribitClient]) -> DeribitClient:
    return make_client(page_size=100)


def params(replay: Replay, mount: str, name: str) -> list[str]:
    return [r.query[name][0] for r in replay.requests(mount)]


# --------------------------------------------------------------------------------------------
# Paging over the real recording
# --------------------------------------------------------------------------------------------


def test_day_in_pages_of_100_is_the_recording(client: DeribitClient, replay: Replay) -> None:
    """Guards against lost, duplicated or altered trades across 14+ page boundaries."""
    pages = list(client.iter_option_trade_pages("BTC", *DAY, history=True))
    table = pa.concat_tables(page.table for page in pages)
    assert table.schema.equals(OPTION_TRADE_LAKE_SCHEMA)
    assert table.num_rows == 1350
    assert table.to_pylist() == [expected_row(r) for r in CSV_ROWS]
    assert table["mark_price"].null_count == 1350  # never invented
    assert len(set(table["trade_id"].to_pylist())) == 1350
    assert all(page.rejected == [] and page.added_fields == [] for page in pages)

    requests = replay.requests("deribit_history")
    assert replay.requests("deribit") == []
    assert len(requests) == len(pages) >= 14
    assert {r.path for r in requests} == {TRADES_PATH}
    for request in requests:
        assert {k: v[0] for k, v in request.query.items() if k != "start_timestamp"} == {
            "currency": "BTC",
            "kind": "option",
            "end_timestamp": str(DAY[1]),
            "count": "100",
            "sorting": "asc",
            "include_old": "true",
        }
    starts = [int(s) for s in params(replay, "deribit_history", "start_timestamp")]
    last_ms = [page.table["timestamp"].cast(pa.int64())[-1].as_py() for page in pages]
    assert starts == [DAY[0], *last_ms[:-1]]  # the last timestamp, not +1
    # Each later request gets at least the previous page's last trade again.
    assert all(page.duplicates >= 1 for page in pages[1:])
    assert sum(page.table.num_rows + page.duplicates for page in pages) > 1350


def test_live_flag_uses_the_live_base_url(client: DeribitClient, replay: Replay) -> None:
    """Guards the history/live switch: history=False must not reach history.deribit.com."""
    start, end = ms("2022-01-01T05:00"), ms("2022-01-01T05:59:59.999")
    pages = list(client.iter_option_trade_pages("BTC", start, end, history=False))
    assert sum(p.table.num_rows for p in pages) == 220
    assert replay.requests("deribit_history") == []
    assert len(replay.requests("deribit")) == 3


def test_default_urls_are_deribits() -> None:
    client = DeribitClient()
    assert client.base_url == "https://www.deribit.com"
    assert client.history_base_url == "https://history.deribit.com"
    assert client.page_size == 1000


def test_pages_are_streamed_not_collected(client: DeribitClient, replay: Replay) -> None:
    """Guards against fetching every page before yielding the first (memory per page)."""
    pages = client.iter_option_trade_pages("BTC", *DAY, history=True)
    first = next(pages)
    assert first.table.num_rows == 100
    assert len(replay.requests("deribit_history")) == 1
    pages.close()


def test_a_page_ending_inside_a_millisecond_of_the_recording(
    make_client: Callable[..., DeribitClient], replay: Replay
) -> None:
    """Guards the boundary case on real data: the 6 trades of one millisecond split 2 + 4."""
    per_ms: dict[int, list[dict[str, str]]] = defaultdict(list)
    for r in CSV_ROWS:
        per_ms[int(r["t"])].append(r)
    busy_ms = max(per_ms, key=lambda t: len(per_ms[t]))
    assert len(per_ms[busy_ms]) == 6
    start = busy_ms - 60_000
    before = sum(1 for r in CSV_ROWS if start <= int(r["t"]) < busy_ms)
    end = busy_ms + 60_000
    client = make_client(page_size=before + 2)
    pages = list(client.iter_option_trade_pages("BTC", start, end, history=True))
    expected = [expected_row(r) for r in CSV_ROWS if start <= int(r["t"]) <= end]
    assert rows(pages) == expected
    assert params(replay, "deribit_history", "start_timestamp")[1] == str(busy_ms)
    assert pages[1].duplicates == 2  # the two busy-ms trades of page 1, dropped


def test_crafted_pages_splitting_a_millisecond_are_deduplicated(
    client: DeribitClient, replay: Replay
) -> None:
    """Guards dedup on trade_id when the server re-sends the boundary millisecond."""
    a, b, c, d, e = (raw_trade(r) for r in CSV_ROWS[:5])
    t1, t2, t3 = a["timestamp"], a["timestamp"] + 5, a["timestamp"] + 9
    a["timestamp"] = t1
    b["timestamp"] = c["timestamp"] = d["timestamp"] = t2
    e["timestamp"] = t3
    replay.inject([jsonrpc([a, b, c], has_more=True), jsonrpc([b, c, d, e], has_more=False)])
    pages = list(client.iter_option_trade_pages("BTC", *DAY, history=True))
    assert [p.table["trade_id"].to_pylist() for p in pages] == [
        [a["trade_id"], b["trade_id"], c["trade_id"]],
        [d["trade_id"], e["trade_id"]],
    ]
    assert [p.duplicates for p in pages] == [0, 2]
    assert params(replay, "deribit_history", "start_timestamp") == [str(DAY[0]), str(t2)]


def test_a_page_that_makes_no_progress_raises(client: DeribitClient, replay: Replay) -> None:
    """Guards against looping forever when a millisecond holds more than a page of trades."""
    trades = [raw_trade(r) for r in CSV_ROWS[:3]]
    for trade in trades:
        trade["timestamp"] = DAY[0] + 10
    same = jsonrpc(trades, has_more=True)
    replay.inject([same, same])
    with pytest.raises(DeribitPagingError, match="repeat"):
        list(client.iter_option_trade_pages("BTC", *DAY, history=True))
    assert len(replay.requests("deribit_history")) == 2


def test_an_empty_page_with_has_more_raises(client: DeribitClient, replay: Replay) -> None:
    replay.inject([jsonrpc([], has_more=True)])
    with pytest.raises(DeribitPagingError):
        list(client.iter_option_trade_pages("BTC", *DAY, history=True))
    assert len(replay.requests("deribit_history")) == 1


def test_range_without_trades_yields_nothing(client: DeribitClient, replay: Replay) -> None:
    pages = list(
        client.iter_option_trade_pages(
            "BTC", ms("2022-01-01T11:00"), ms("2022-01-01T23:00"), history=True
        )
    )
    assert pages == []
    assert len(replay.requests("deribit_history")) == 1


def test_inverted_range_makes_no_request(client: DeribitClient, replay: Replay) -> None:
    assert list(client.iter_option_trade_pages("BTC", DAY[1], DAY[0], history=True)) == []
    assert replay.requests("deribit_history") == []


# --------------------------------------------------------------------------------------------
# Retries and refusals
# --------------------------------------------------------------------------------------------

HOUR_5 = (ms("2022-01-01T05:00"), ms("2022-01-01T05:59:59.999"))


def test_429_waits_retry_after_then_succeeds(
    make_client: Callable[..., DeribitClient], replay: Replay, waits: list[float]
) -> None:
    """Guards against ignoring Deribit's Retry-After on a rate limit."""
    replay.inject(
        [
            Response.json(
                {"jsonrpc": "2.0", "error": {"code": 10028, "message": "too_many_requests"}},
                429,
                {"Retry-After": "3"},
            )
        ],
    )
    pages = list(make_client().iter_option_trade_pages("BTC", *HOUR_5, history=True))
    assert sum(p.table.num_rows for p in pages) == 220
    assert waits == [3.0]
    requests = replay.requests("deribit_history")
    assert len(requests) == 2 and requests[0].query == requests[1].query


def test_503_is_retried_with_bounded_backoff(
    make_client: Callable[..., DeribitClient], replay: Replay, waits: list[float]
) -> None:
    replay.inject([Response(503, body=b"unavailable")])
    client = make_client()
    assert (
        sum(p.table.num_rows for p in client.iter_option_trade_pages("BTC", *HOUR_5, history=True))
        == 220
    )
    assert len(waits) == 1 and 0 < waits[0] <= client.backoff_max_seconds


def test_retry_mid_paging_keeps_the_cursor(
    client: DeribitClient, replay: Replay, waits: list[float]
) -> None:
    """Guards against a retried page skipping or repeating trades."""
    pages = client.iter_option_trade_pages("BTC", *DAY, history=True)
    first = next(pages)
    replay.inject([Response(502, body=b"bad gateway")])
    rest = list(pages)
    assert sum(p.table.num_rows for p in [first, *rest]) == 1350
    starts = params(replay, "deribit_history", "start_timestamp")
    assert starts[1] == starts[2] == str(first.table["timestamp"].cast(pa.int64())[-1].as_py())
    assert len(waits) == 1


def test_retries_stop_after_max_attempts(
    make_client: Callable[..., DeribitClient], replay: Replay, waits: list[float]
) -> None:
    replay.inject([Response(500, body=b"oops")] * 3)
    with pytest.raises(DeribitRetryableResponse) as info:
        list(make_client(max_attempts=3).iter_option_trade_pages("BTC", *HOUR_5, history=True))
    assert info.value.status == 500
    assert len(replay.requests("deribit_history")) == 3 and len(waits) == 2


def test_retry_after_beyond_the_maximum_fails_at_once(
    make_client: Callable[..., DeribitClient], replay: Replay, waits: list[float]
) -> None:
    replay.inject([Response(429, {"Retry-After": "600"}, b"slow down")])
    with pytest.raises(DeribitAPIError) as info:
        list(make_client().iter_option_trade_pages("BTC", *HOUR_5, history=True))
    assert info.value.status == 429 and waits == []


def test_future_start_is_a_deribit_api_error_not_retried(
    client: DeribitClient, replay: Replay, waits: list[float]
) -> None:
    """Guards against retrying Deribit's 400 for a start_timestamp in the future."""
    future = int(time.time() * 1000) + 86_400_000
    with pytest.raises(DeribitAPIError) as info:
        list(client.iter_option_trade_pages("BTC", future, future + 3_600_000, history=False))
    error = info.value
    assert (error.status, error.code) == (400, -32602)
    assert "Invalid params" in error.message and "start_timestamp" in error.message
    assert TRADES_PATH in str(error) and "live API" in str(error)
    assert len(replay.requests("deribit")) == 1 and waits == []


def test_unrecorded_currency_is_a_404_api_error(client: DeribitClient, waits: list[float]) -> None:
    """Guards that a gap in the replay fails loudly instead of yielding no trades."""
    with pytest.raises(DeribitAPIError) as info:
        list(client.iter_option_trade_pages("ETH", *DAY, history=True))
    assert info.value.status == 404 and info.value.code == -1
    assert "replay" in info.value.message and waits == []


def test_json_rpc_error_in_a_200_is_an_api_error(client: DeribitClient, replay: Replay) -> None:
    replay.inject(
        [Response.json({"jsonrpc": "2.0", "error": {"code": 11050, "message": "bad_request"}})],
    )
    with pytest.raises(DeribitAPIError) as info:
        list(client.iter_option_trade_pages("BTC", *DAY, history=True))
    assert (info.value.status, info.value.code, info.value.message) == (200, 11050, "bad_request")


def test_transport_errors_are_retried_then_reported(waits: list[float]) -> None:
    """Guards against a transient network failure failing the run, or a permanent one hiding."""
    calls = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("refused")

    client = DeribitClient(base_url="https://deribit.test", max_attempts=3).with_transport(
        httpx.MockTransport(refuse), sleep=waits.append
    )
    with pytest.raises(DeribitTransportError) as info:
        list(client.iter_option_trade_pages("BTC", *DAY, history=False))
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert len(calls) == 3 and len(waits) == 2
    assert str(calls[0].url).startswith("https://deribit.test" + TRADES_PATH)


def test_timeouts_are_set() -> None:
    seen = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(
            200, json={"jsonrpc": "2.0", "result": {"trades": [], "has_more": False}}
        )

    client = DeribitClient(history_base_url="https://h.test", timeout_seconds=2.0)
    list(
        client.with_transport(httpx.MockTransport(answer)).iter_option_trade_pages(
            "BTC", *DAY, history=True
        )
    )
    assert seen == [{"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}]


# --------------------------------------------------------------------------------------------
# Contract
# --------------------------------------------------------------------------------------------


def page_of(n: int = 5) -> list[dict[str, Any]]:
    return [raw_trade(r) for r in CSV_ROWS[:n]]


def set_field(name: str, value: Any) -> Callable[[list[dict[str, Any]]], None]:
    def mutate(trades: list[dict[str, Any]]) -> None:
        trades[2][name] = value

    return mutate


def drop_field(name: str) -> Callable[[list[dict[str, Any]]], None]:
    def mutate(trades: list[dict[str, Any]]) -> None:
        del trades[2][name]

    return mutate


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        pytest.param(set_field("price", "0.0165"), "price", id="price-as-string"),
        pytest.param(drop_field("amount"), "amount", id="missing-amount"),
        pytest.param(set_field("amount", None), "amount", id="null-amount"),
        pytest.param(set_field("price", 0.016500001), "price", id="price-9-decimals"),
        pytest.param(set_field("index_price", -1.5), "index_price", id="negative-index"),
        pytest.param(set_field("timestamp", "1640995220191"), "timestamp", id="string-timestamp"),
        pytest.param(set_field("trade_id", 197392876), "trade_id", id="numeric-trade-id"),
        pytest.param(set_field("trade_seq", 1.5), "trade_seq", id="float-seq"),
        pytest.param(set_field("tick_direction", 4), "tick_direction", id="tick-4"),
        pytest.param(set_field("direction", "BUY"), "direction", id="direction-case"),
        pytest.param(set_field("iv", "61.5"), "iv", id="iv-as-string"),
        pytest.param(set_field("amount", True), "amount", id="bool-amount"),
        pytest.param(drop_field("instrument_name"), "instrument_name", id="missing-instrument"),
    ],
)
def test_malformed_trade_names_the_field_and_request(
    client: DeribitClient,
    replay: Replay,
    mutate: Callable[[list[dict[str, Any]]], None],
    field: str,
) -> None:
    """Guards against storing a trade that breaks the contract, or an unhelpful error."""
    trades = page_of()
    mutate(trades)
    replay.inject([jsonrpc(trades, has_more=False)])
    with pytest.raises(ContractViolation) as info:
        list(client.iter_option_trade_pages("BTC", *DAY, history=True))
    error = info.value
    assert error.dataset == DATASET == "deribit_option_trades"
    assert error.field == field
    assert TRADES_PATH in error.source and "currency=BTC" in error.source
    assert "trade 2" in error.observed
    assert len(replay.requests("deribit_history")) == 1  # not retried


def test_mark_price_and_iv_may_be_null_or_present(client: DeribitClient, replay: Replay) -> None:
    trades = page_of()
    trades[0]["mark_price"] = 0.01702345
    trades[1]["mark_price"] = None
    trades[2]["iv"] = None
    del trades[3]["iv"]
    replay.inject([jsonrpc(trades, has_more=False)])
    (page,) = client.iter_option_trade_pages("BTC", *DAY, history=True)
    assert page.table["mark_price"].to_pylist() == [0.01702345, None, None, None, None]
    assert page.table["iv"].to_pylist()[2:4] == [None, None]


@pytest.mark.parametrize(
    ("response", "observed"),
    [
        pytest.param(
            Response(200, {"Content-Type": "text/html"}, b"<html>502</html>"),
            "text/html",
            id="html",
        ),
        pytest.param(Response(200, body=b""), "empty body", id="empty"),
        pytest.param(Response.json({"jsonrpc": "2.0", "result": []}), "dict", id="result-list"),
        pytest.param(
            Response.json({"jsonrpc": "2.0", "result": {"trades": []}}), "dict", id="no-has-more"
        ),
        pytest.param(Response.json([1, 2]), "list", id="array"),
        pytest.param(
            Response(200, body=b'{"result": {"trades": [], "has_more": false, "x": NaN}}'),
            "NaN",
            id="nan",
        ),
    ],
)
def test_malformed_body_is_a_payload_violation(
    client: DeribitClient, replay: Replay, response: Response, observed: str
) -> None:
    malformed = observed in ("text/html", "empty body", "NaN")  # not JSON: retried
    replay.inject([response] * (4 if malformed else 1))
    with pytest.raises(ContractViolation) as info:
        list(client.iter_option_trade_pages("BTC", *DAY, history=True))
    assert info.value.field is None
    assert observed in info.value.observed
    assert isinstance(info.value, MalformedResponse) == malformed


@pytest.mark.parametrize(
    ("timestamps", "expected"),
    [
        pytest.param([DAY[0] - 1], "within", id="before-start"),
        pytest.param([DAY[1] + 1], "within", id="after-end"),
        pytest.param([DAY[0] + 9, DAY[0] + 5], "ascending", id="descending"),
    ],
)
def test_trade_times_must_be_ascending_and_in_range(
    client: DeribitClient, replay: Replay, timestamps: list[int], expected: str
) -> None:
    """Guards against storing trades of another day, or pages of the wrong sort order."""
    trades = page_of(len(timestamps))
    for trade, ts in zip(trades, timestamps, strict=True):
        trade["timestamp"] = ts
    replay.inject([jsonrpc(trades, has_more=False)])
    with pytest.raises(ContractViolation) as info:
        list(client.iter_option_trade_pages("BTC", *DAY, history=True))
    assert info.value.field == "timestamp" and expected in info.value.expected


def test_unparseable_instrument_is_rejected_alone(client: DeribitClient, replay: Replay) -> None:
    """Guards that one odd instrument neither fails the page nor slips into the lake."""
    trades = page_of(6)
    trades[1]["instrument_name"] = "BTC-PERPETUAL"
    trades[4]["instrument_name"] = "BTC-31FEB22-40000-C"
    replay.inject([jsonrpc(trades, has_more=False)])
    (page,) = client.iter_option_trade_pages("BTC", *DAY, history=True)
    assert page.table["trade_id"].to_pylist() == [trades[i]["trade_id"] for i in (0, 2, 3, 5)]
    assert [(r.trade_id, r.instrument_name) for r in page.rejected] == [
        (trades[1]["trade_id"], "BTC-PERPETUAL"),
        (trades[4]["trade_id"], "BTC-31FEB22-40000-C"),
    ]
    assert "perpetual" in page.rejected[0].reason
    assert "no such date" in page.rejected[1].reason
    assert tuple(page.rejected[0]) == (
        trades[1]["trade_id"],
        "BTC-PERPETUAL",
        page.rejected[0].reason,
    )


def test_added_fields_are_reported_not_fatal(client: DeribitClient, replay: Replay) -> None:
    trades = page_of(3)
    trades[0]["contracts"] = trades[0]["amount"]  # documented, not stored: not "added"
    trades[0]["liquidation"] = "M"
    trades[1]["maker_fee_tier"] = 2
    trades[2]["block_trade_id"] = "BLOCK-154"
    trades[2]["new_field"] = "x"
    replay.inject([jsonrpc(trades, has_more=False)])
    (page,) = client.iter_option_trade_pages("BTC", *DAY, history=True)
    assert page.added_fields == ["maker_fee_tier", "new_field"]
    assert page.table.num_rows == 3
    # the block-trade leg and the liquidation are stored; the others are null
    assert page.table["block_trade_id"].to_pylist() == [None, None, "BLOCK-154"]
    assert page.table["liquidation"].to_pylist() == ["M", None, None]


def test_an_unknown_liquidation_code_is_a_contract_violation(
    client: DeribitClient, replay: Replay
) -> None:
    trades = page_of(2)
    trades[1]["liquidation"] = "X"
    replay.inject([jsonrpc(trades, has_more=False)])
    with pytest.raises(ContractViolation, match="liquidation"):
        list(client.iter_option_trade_pages("BTC", *DAY, history=True))


def test_prices_are_exact_decimals(client: DeribitClient, replay: Replay) -> None:
    """Guards against float parsing: 8-decimal values survive to the decimal128 column."""
    body = (
        json.dumps(
            {"jsonrpc": "2.0", "result": {"trades": [raw_trade(CSV_ROWS[0])], "has_more": False}}
        )
        .replace('"price": 0.004', '"price": 0.12345678')
        .replace('"amount": 0.1', '"amount": 12345678901.12345678')
    )
    replay.inject([Response.raw_json(body.encode())])
    (page,) = client.iter_option_trade_pages("BTC", *DAY, history=True)
    assert page.table["price"].to_pylist() == [Decimal("0.12345678")]
    assert page.table["amount"].to_pylist() == [Decimal("12345678901.12345678")]
