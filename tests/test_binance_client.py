"""Tests of BinanceSpotClient.fetch_klines against the recorded real Binance klines.

No network: a ``httpx.MockTransport`` emulates ``GET /api/v3/klines`` over the rows recorded in
shared/data/binance (startTime/endTime inclusive on open time, ascending, limit default 500,
max 1000), and canned responses stand in for errors and malformed payloads.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from mkt_platform.defs.binance.contract import KLINE_CONTRACT
from mkt_platform.defs.binance.resources import (
    KLINES_PATH,
    BinanceAPIError,
    BinanceSpotClient,
    BinanceTransportError,
)
from mkt_platform.lib.contracts import ContractViolation, MalformedResponse
from mkt_platform.lib.http import RetryableResponse

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
BINANCE_DIR = DATA_DIR / "binance"
BASE_URL = "https://binance.test"
HOUR_MS = 3_600_000
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
MONTHS = ("2023-01", "2023-02", "2023-03", "2023-04", "2023-05", "2023-06")
DECIMAL_FIELDS = (1, 2, 3, 4, 5, 7, 9, 10)
DECIMAL_NAMES = [KLINE_CONTRACT.fields[i].name for i in DECIMAL_FIELDS]

Row = list[Any]
Canned = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def ms(text: str) -> int:
    """UTC ISO timestamp -> epoch milliseconds."""
    return round(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def iso(ms_value: int) -> str:
    """Epoch milliseconds -> the ISO form the client puts in its error messages."""
    return datetime.fromtimestamp(ms_value / 1000, UTC).isoformat(timespec="milliseconds")


def month_file(symbol: str, month: str) -> Path:
    return BINANCE_DIR / f"klines_{symbol}_1h_{month}.json"


def load_recorded() -> dict[str, list[Row]]:
    return {
        symbol: [
            row for month in MONTHS for row in json.loads(month_file(symbol, month).read_text())
        ]
        for symbol in SYMBOLS
    }


_RECORDED = load_recorded()


def binance_error(status: int, code: int, msg: str) -> httpx.Response:
    return httpx.Response(status, json={"code": code, "msg": msg})


class FakeBinance:
    """``/api/v3/klines`` over the recorded 1h rows, with a queue of canned answers first."""

    def __init__(self, recorded: dict[str, list[Row]]) -> None:
        self.recorded = recorded
        self.requests: list[httpx.Request] = []
        #: What each served (non-canned) request answered, in order.
        self.pages: list[list[Row]] = []
        self.canned: list[Canned] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.canned:
            answer = self.canned.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer(request) if callable(answer) else answer
        return self.serve(request)

    def serve(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != KLINES_PATH:
            return httpx.Response(404, text="<html>Not Found</html>")
        params = request.url.params
        symbol = params.get("symbol")
        if symbol not in self.recorded:
            return binance_error(400, -1121, "Invalid symbol.")
        if params.get("interval") != "1h":
            return binance_error(400, -1120, "Invalid interval.")
        limit = int(params.get("limit", 500))
        if not 1 <= limit <= 1000:
            return binance_error(400, -1130, "Data sent for parameter 'limit' is not valid.")
        rows = self.recorded[symbol]
        start, end = params.get("startTime"), params.get("endTime")
        if start is not None:
            rows = [r for r in rows if r[0] >= int(start)]
        if end is not None:
            rows = [r for r in rows if r[0] <= int(end)]
        # With a startTime Binance pages forward from it; otherwise it answers the latest klines.
        page = rows[:limit] if start is not None else rows[-limit:]
        self.pages.append(page)
        return httpx.Response(200, json=page)

    def param(self, name: str) -> list[str | None]:
        return [r.url.params.get(name) for r in self.requests]


@pytest.fixture(scope="module")
def recorded() -> dict[str, list[Row]]:
    """The recorded BTCUSDT/ETHUSDT/SOLUSDT 1h klines of 2023-01 .. 2023-06."""
    return _RECORDED


@pytest.fixture
def fake(recorded: dict[str, list[Row]]) -> FakeBinance:
    return FakeBinance(recorded)


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def make_client(fake: FakeBinance, waits: list[float]) -> Callable[..., BinanceSpotClient]:
    """A client on the fake transport that records retry waits instead of sleeping."""

    def make(**config: Any) -> BinanceSpotClient:
        client = BinanceSpotClient(base_url=BASE_URL, **config)
        return client.with_transport(httpx.MockTransport(fake), sleep=waits.append)

    return make


@pytest.fixture
def client(make_client: Callable[..., BinanceSpotClient]) -> BinanceSpotClient:
    return make_client(max_attempts=4)


def rows_between(recorded: dict[str, list[Row]], symbol: str, start: int, end: int) -> list[Row]:
    return [r for r in recorded[symbol] if start <= r[0] <= end]


def table_rows(table: pa.Table) -> list[Row]:
    """The table back in Binance's wire form: ints, 8-decimal strings, the ignore string."""
    columns = []
    for field in KLINE_CONTRACT.fields:
        column = table[field.name]
        if pa.types.is_timestamp(column.type):
            columns.append(column.cast(pa.int64()).to_pylist())
        elif pa.types.is_decimal(column.type):
            # format 'f' keeps the 8 decimals ('0.00000000', not str()'s '0E-8').
            columns.append([format(value, "f") for value in column.to_pylist()])
        else:
            columns.append(column.to_pylist())
    return [list(row) for row in zip(*columns, strict=True)]


def assert_violation(
    exc: ContractViolation, symbol: str, start: int, end: int, field: str | None
) -> None:
    message = str(exc)
    assert KLINES_PATH in message
    assert f"symbol={symbol}" in message
    assert iso(start) in message and iso(end) in message
    assert exc.dataset == KLINE_CONTRACT.dataset
    assert exc.field == field
    if field is not None:
        assert f"field {field!r}" in message


# --------------------------------------------------------------------------------------------
# Pagination over the recorded data
# --------------------------------------------------------------------------------------------


def test_fake_serves_binance_semantics(fake: FakeBinance, recorded: dict[str, list[Row]]) -> None:
    """Guards the fake itself: inclusive bounds, ascending, default limit 500, max 1000."""
    with httpx.Client(base_url=BASE_URL, transport=httpx.MockTransport(fake)) as http:
        start, end = ms("2023-01-01T00:00"), ms("2023-01-01T05:00")
        body = http.get(
            KLINES_PATH,
            params={"symbol": "BTCUSDT", "interval": "1h", "startTime": start, "endTime": end},
        ).json()
        assert [r[0] for r in body] == [start + i * HOUR_MS for i in range(6)]
        body = http.get(
            KLINES_PATH, params={"symbol": "BTCUSDT", "interval": "1h", "startTime": start}
        ).json()
        assert len(body) == 500
        response = http.get(
            KLINES_PATH, params={"symbol": "BTCUSDT", "interval": "1h", "limit": 1001}
        )
        assert response.status_code == 400


def test_first_quarter_matches_recorded_rows_in_three_pages(
    client: BinanceSpotClient, fake: FakeBinance, recorded: dict[str, list[Row]]
) -> None:
    """Guards against lost, duplicated or altered klines across page boundaries."""
    start, end = ms("2023-01-01T00:00"), ms("2023-03-31T23:00")
    expected = rows_between(recorded, "BTCUSDT", start, end)
    assert len(expected) == 744 + 672 + 743 == 2159

    table = client.fetch_klines("BTCUSDT", "1h", start, end)

    assert table.num_rows == 2159
    assert table_rows(table) == expected
    assert len(fake.requests) == 3
    assert fake.param("limit") == ["1000"] * 3
    assert fake.param("endTime") == [str(end)] * 3
    assert [len(page) for page in fake.pages] == [1000, 1000, 159]
    assert fake.param("startTime") == [
        str(start),
        str(fake.pages[0][-1][0] + 1),
        str(fake.pages[1][-1][0] + 1),
    ]


def test_decimal_strings_round_trip_exactly(
    client: BinanceSpotClient, recorded: dict[str, list[Row]]
) -> None:
    """Guards against prices/volumes going through float: str(Decimal) equals the wire string."""
    start, end = ms("2023-01-01T00:00"), ms("2023-01-31T23:00")
    table = client.fetch_klines("BTCUSDT", "1h", start, end)
    expected = rows_between(recorded, "BTCUSDT", start, end)
    for name, index in zip(DECIMAL_NAMES, DECIMAL_FIELDS, strict=True):
        assert [str(d) for d in table[name].to_pylist()] == [r[index] for r in expected], name
    assert table["trades"].to_pylist() == [r[8] for r in expected]
    assert table["open_time"].cast(pa.int64()).to_pylist() == [r[0] for r in expected]


def test_exactly_1000_klines_ending_on_the_last_open_time_is_one_request(
    client: BinanceSpotClient, fake: FakeBinance, recorded: dict[str, list[Row]]
) -> None:
    """Guards the page-boundary arithmetic when the range ends on the 1000th open time."""
    start = ms("2023-01-01T00:00")
    end = recorded["BTCUSDT"][999][0]
    table = client.fetch_klines("BTCUSDT", "1h", start, end)
    assert table_rows(table) == recorded["BTCUSDT"][:1000]
    # cursor = end + 1 > end_ms, so the loop stops without asking for an empty page.
    assert len(fake.requests) == 1


def test_exactly_1000_klines_in_a_wider_range_costs_a_second_empty_request(
    client: BinanceSpotClient, fake: FakeBinance, recorded: dict[str, list[Row]]
) -> None:
    """Guards against losing/duplicating the 1000th kline when a full page is the last one."""
    start = ms("2023-01-01T00:00")
    end = recorded["BTCUSDT"][999][0] + HOUR_MS - 1
    table = client.fetch_klines("BTCUSDT", "1h", start, end)
    assert table_rows(table) == recorded["BTCUSDT"][:1000]
    assert [len(page) for page in fake.pages] == [1000, 0]
    assert fake.param("startTime") == [str(start), str(recorded["BTCUSDT"][999][0] + 1)]


def test_1001_klines_cost_two_requests(
    client: BinanceSpotClient, fake: FakeBinance, recorded: dict[str, list[Row]]
) -> None:
    """Guards against dropping the single kline of a last page."""
    start = ms("2023-01-01T00:00")
    end = recorded["BTCUSDT"][1000][0]
    table = client.fetch_klines("BTCUSDT", "1h", start, end)
    assert table_rows(table) == recorded["BTCUSDT"][:1001]
    assert [len(page) for page in fake.pages] == [1000, 1]
    assert table["open_time"].cast(pa.int64()).to_pylist()[-1] == end


def test_inverted_range_returns_empty_table_without_requests(
    client: BinanceSpotClient, fake: FakeBinance
) -> None:
    """Guards against an empty range erroring or returning a schema-less table."""
    table = client.fetch_klines("BTCUSDT", "1h", ms("2023-01-02T00:00"), ms("2023-01-01T00:00"))
    assert table.num_rows == 0
    assert table.column_names == KLINE_CONTRACT.names
    assert table.schema.equals(KLINE_CONTRACT.arrow_schema())
    assert fake.requests == []


def test_range_without_klines_returns_empty_table(
    client: BinanceSpotClient, fake: FakeBinance
) -> None:
    """Guards the empty-page path: the halted 13:00 hour of 2023-03-24 has no kline."""
    start = ms("2023-03-24T13:00")
    table = client.fetch_klines("BTCUSDT", "1h", start, start + HOUR_MS - 1)
    assert table.num_rows == 0
    assert table.schema.equals(KLINE_CONTRACT.arrow_schema())
    assert len(fake.requests) == 1


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_halt_day_has_23_klines_and_no_1300(client: BinanceSpotClient, symbol: str) -> None:
    """Guards against inventing (or dropping around) the missing halt kline of 2023-03-24."""
    table = client.fetch_klines(symbol, "1h", ms("2023-03-24T00:00"), ms("2023-03-24T23:00"))
    opens = table["open_time"].cast(pa.int64()).to_pylist()
    assert table.num_rows == 23
    assert ms("2023-03-24T13:00") not in opens
    assert ms("2023-03-24T12:00") in opens and ms("2023-03-24T14:00") in opens
    assert opens == sorted(set(opens))


def test_pagination_across_the_halt_gap(
    client: BinanceSpotClient, fake: FakeBinance, recorded: dict[str, list[Row]]
) -> None:
    """Guards against the cursor assuming one kline per hour (it must follow real open times)."""
    start, end = ms("2023-02-20T00:00"), ms("2023-04-10T23:00")
    expected = rows_between(recorded, "ETHUSDT", start, end)
    table = client.fetch_klines("ETHUSDT", "1h", start, end)
    assert len(expected) == 50 * 24 - 1
    assert table_rows(table) == expected
    assert [len(page) for page in fake.pages] == [1000, 199]


# --------------------------------------------------------------------------------------------
# The request itself
# --------------------------------------------------------------------------------------------


def test_request_url_and_query_params(client: BinanceSpotClient, fake: FakeBinance) -> None:
    """Guards against a wrong path, host or a missing/renamed query parameter."""
    start, end = ms("2023-01-01T00:00"), ms("2023-01-01T23:00")
    client.fetch_klines("SOLUSDT", "1h", start, end)
    (request,) = fake.requests
    assert request.method == "GET"
    assert f"{request.url.scheme}://{request.url.host}{request.url.path}" == BASE_URL + KLINES_PATH
    assert dict(request.url.params) == {
        "symbol": "SOLUSDT",
        "interval": "1h",
        "startTime": str(start),
        "endTime": str(end),
        "limit": "1000",
    }


@pytest.mark.parametrize(
    ("timeout_seconds", "expected"),
    [
        (10.0, {"connect": 5.0, "read": 10.0, "write": 10.0, "pool": 10.0}),
        (2.0, {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}),
    ],
)
def test_timeouts_are_set(
    make_client: Callable[..., BinanceSpotClient],
    fake: FakeBinance,
    timeout_seconds: float,
    expected: dict[str, float],
) -> None:
    """Guards against requests without timeouts (a hung connection stalling a run forever)."""
    make_client(timeout_seconds=timeout_seconds).fetch_klines(
        "BTCUSDT", "1h", ms("2023-01-01T00:00"), ms("2023-01-01T01:00")
    )
    assert fake.requests[0].extensions["timeout"] == expected


# --------------------------------------------------------------------------------------------
# Retries
# --------------------------------------------------------------------------------------------

JAN_1 = (ms("2023-01-01T00:00"), ms("2023-01-01T23:00"))


def test_429_waits_retry_after_then_succeeds(
    client: BinanceSpotClient, fake: FakeBinance, waits: list[float]
) -> None:
    """Guards against ignoring Binance's Retry-After on a rate limit (which escalates to a ban)."""
    fake.canned.append(httpx.Response(429, headers={"Retry-After": "7"}, text="Too many"))
    table = client.fetch_klines("BTCUSDT", "1h", *JAN_1)
    assert table.num_rows == 24
    assert waits == [7.0]
    assert len(fake.requests) == 2
    assert fake.requests[0].url == fake.requests[1].url


def test_418_with_retry_after_is_retried(
    client: BinanceSpotClient, fake: FakeBinance, waits: list[float]
) -> None:
    """Guards against treating Binance's 418 (IP auto-ban) as a permanent 4xx."""
    fake.canned.append(httpx.Response(418, headers={"Retry-After": "3"}, text="banned"))
    assert client.fetch_klines("BTCUSDT", "1h", *JAN_1).num_rows == 24
    assert waits == [3.0]
    assert len(fake.requests) == 2


def test_500_retried_after_one_bounded_backoff(
    client: BinanceSpotClient, fake: FakeBinance, waits: list[float]
) -> None:
    """Guards against 5xx failing the run at once or retrying without any wait."""
    fake.canned.append(httpx.Response(500, text="Internal error"))
    assert client.fetch_klines("BTCUSDT", "1h", *JAN_1).num_rows == 24
    assert len(waits) == 1
    assert 0 < waits[0] <= client.backoff_max_seconds
    assert len(fake.requests) == 2


def test_backoff_grows_and_is_capped(
    make_client: Callable[..., BinanceSpotClient], fake: FakeBinance, waits: list[float]
) -> None:
    """Guards against a constant or unbounded backoff."""
    client = make_client(max_attempts=5, backoff_initial_seconds=4.0, backoff_max_seconds=10.0)
    fake.canned.extend(httpx.Response(502, text="bad gateway") for _ in range(4))
    assert client.fetch_klines("BTCUSDT", "1h", *JAN_1).num_rows == 24
    assert len(waits) == 4
    assert 4.0 <= waits[0] <= 5.0
    assert 8.0 <= waits[1] <= 9.0
    assert waits[2:] == [10.0, 10.0]


def test_retry_during_pagination_keeps_the_cursor(
    client: BinanceSpotClient, fake: FakeBinance, waits: list[float], recorded: dict[str, list[Row]]
) -> None:
    """Guards against a retried page skipping or repeating klines."""
    start, end = ms("2023-01-01T00:00"), ms("2023-02-28T23:00")
    first_page = fake.serve  # serve page 1 normally, then a 429 for page 2, then normally.
    fake.canned.extend(
        [first_page, httpx.Response(429, headers={"Retry-After": "1"}, text="slow down")]
    )
    table = client.fetch_klines("BTCUSDT", "1h", start, end)
    assert table_rows(table) == rows_between(recorded, "BTCUSDT", start, end)
    assert waits == [1.0]
    starts = fake.param("startTime")
    assert len(starts) == 3
    assert starts[1] == starts[2] == str(recorded["BTCUSDT"][999][0] + 1)


def test_503_every_time_raises_after_max_attempts(
    make_client: Callable[..., BinanceSpotClient], fake: FakeBinance, waits: list[float]
) -> None:
    """Guards against retrying forever, or giving up before max_attempts."""
    client = make_client(max_attempts=3)
    fake.canned.extend(httpx.Response(503, text="unavailable") for _ in range(10))
    with pytest.raises(RetryableResponse) as info:
        client.fetch_klines("BTCUSDT", "1h", *JAN_1)
    assert info.value.status == 503
    assert len(fake.requests) == 3
    assert len(waits) == 2


@pytest.mark.parametrize(
    "error", [httpx.ConnectTimeout("connect timed out"), httpx.ConnectError("refused")]
)
def test_transport_errors_are_retried(
    client: BinanceSpotClient, fake: FakeBinance, waits: list[float], error: Exception
) -> None:
    """Guards against a transient network failure failing the run."""
    fake.canned.extend([error, error])
    assert client.fetch_klines("BTCUSDT", "1h", *JAN_1).num_rows == 24
    assert len(fake.requests) == 3
    assert len(waits) == 2 and all(w > 0 for w in waits)


def test_transport_error_every_time_raises_binance_transport_error(
    make_client: Callable[..., BinanceSpotClient], fake: FakeBinance, waits: list[float]
) -> None:
    """Guards against swallowing a persistent network failure or losing which request failed."""
    client = make_client(max_attempts=2)
    fake.canned.extend(httpx.ReadTimeout("read timed out") for _ in range(5))
    with pytest.raises(BinanceTransportError) as info:
        client.fetch_klines("BTCUSDT", "1h", *JAN_1)
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert "symbol=BTCUSDT" in str(info.value) and iso(JAN_1[0]) in str(info.value)
    assert len(fake.requests) == 2
    assert len(waits) == 1


def test_retry_after_beyond_the_maximum_fails_at_once(
    make_client: Callable[..., BinanceSpotClient], fake: FakeBinance, waits: list[float]
) -> None:
    """Guards against stalling a run for a multi-hour IP ban."""
    client = make_client(retry_after_max_seconds=60.0)
    fake.canned.append(httpx.Response(429, headers={"Retry-After": "61"}, text="ban"))
    with pytest.raises(BinanceAPIError) as info:
        client.fetch_klines("BTCUSDT", "1h", *JAN_1)
    assert info.value.status == 429
    assert len(fake.requests) == 1
    assert waits == []


# --------------------------------------------------------------------------------------------
# Other 4xx fail at once
# --------------------------------------------------------------------------------------------


def test_invalid_symbol_fails_at_once_with_binance_code(
    client: BinanceSpotClient, fake: FakeBinance, waits: list[float]
) -> None:
    """Guards against retrying a permanent error, or losing Binance's code and message."""
    with pytest.raises(BinanceAPIError) as info:
        client.fetch_klines("NOPEUSDT", "1h", *JAN_1)
    error = info.value
    assert (error.status, error.code, error.msg) == (400, -1121, "Invalid symbol.")
    assert "NOPEUSDT" in str(error)
    assert "-1121" in str(error)
    assert len(fake.requests) == 1
    assert waits == []


def test_4xx_without_json_body_fails_at_once(
    client: BinanceSpotClient, fake: FakeBinance, waits: list[float]
) -> None:
    """Guards against a non-JSON 4xx body crashing the error path or being retried."""
    fake.canned.append(httpx.Response(403, text="<html>WAF says no</html>"))
    with pytest.raises(BinanceAPIError) as info:
        client.fetch_klines("BTCUSDT", "1h", *JAN_1)
    assert info.value.status == 403
    assert info.value.code is None
    assert "WAF says no" in info.value.msg
    assert len(fake.requests) == 1 and waits == []


# --------------------------------------------------------------------------------------------
# Malformed payloads
# --------------------------------------------------------------------------------------------


def jan_1_rows(recorded: dict[str, list[Row]]) -> list[Row]:
    return [list(row) for row in rows_between(recorded, "BTCUSDT", *JAN_1)]


def with_field(rows: list[Row], index: int, value: Any) -> list[Row]:
    rows[5][index] = value
    return rows


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        pytest.param(
            lambda rows: [*rows[:5], rows[5][:11], *rows[6:]],
            "taker_buy_base_volume|taker_buy_quote_volume|ignore",
            id="11-fields",
        ),
        pytest.param(lambda rows: with_field(rows, 2, "abc"), "high", id="non-numeric-high"),
        pytest.param(lambda rows: with_field(rows, 1, 16541.77), "open", id="float-open"),
        pytest.param(
            lambda rows: with_field(rows, 0, str(rows[5][0])), "open_time", id="string-open-time"
        ),
        pytest.param(lambda rows: with_field(rows, 1, "16541.770000001"), "open", id="9-decimals"),
        pytest.param(lambda rows: with_field(rows, 8, "149854"), "trades", id="string-trades"),
        pytest.param(
            lambda rows: [*rows[:3], rows[4], rows[3], *rows[5:]], "open_time", id="not-ascending"
        ),
        pytest.param(lambda rows: [*rows, rows[-1]], "open_time", id="duplicate-open-time"),
    ],
)
def test_malformed_kline_names_request_and_field(
    client: BinanceSpotClient,
    fake: FakeBinance,
    recorded: dict[str, list[Row]],
    mutate: Callable[[list[Row]], list[Row]],
    field: str,
) -> None:
    """Guards against storing a kline that breaks the contract, or an unhelpful error."""
    fake.canned.append(httpx.Response(200, json=mutate(jan_1_rows(recorded))))
    with pytest.raises(ContractViolation) as info:
        client.fetch_klines("BTCUSDT", "1h", *JAN_1)
    assert_violation(info.value, "BTCUSDT", *JAN_1, field)
    assert len(fake.requests) == 1  # a contract violation is not retried


def test_more_than_8_decimals_is_rejected_not_rounded(
    client: BinanceSpotClient, fake: FakeBinance, recorded: dict[str, list[Row]]
) -> None:
    """Guards against decimal128(38, 8) silently rounding a price Binance sent exactly."""
    rows = jan_1_rows(recorded)
    rows[0][5] = "4364.835700001"
    fake.canned.append(httpx.Response(200, json=rows))
    with pytest.raises(ContractViolation) as info:
        client.fetch_klines("BTCUSDT", "1h", *JAN_1)
    assert info.value.field == "volume"
    assert "decimal128(38, 8)" in info.value.expected


@pytest.mark.parametrize(
    ("response", "observed"),
    [
        pytest.param(
            httpx.Response(
                200,
                content=b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                headers={"Content-Type": "text/html"},
            ),
            "text/html",
            id="html-page",
        ),
        pytest.param(httpx.Response(200, content=b""), "empty body", id="empty-body"),
        pytest.param(httpx.Response(200, content=b"  \n"), "empty body", id="blank-body"),
        pytest.param(
            httpx.Response(200, json={"code": 0, "msg": "weird"}), "dict", id="json-object"
        ),
        pytest.param(httpx.Response(200, content=b"null"), "NoneType", id="json-null"),
    ],
)
def test_malformed_body_is_a_payload_violation(
    client: BinanceSpotClient, fake: FakeBinance, response: httpx.Response, observed: str
) -> None:
    """Guards against a non-array 200 body crashing with a bare JSON/Type error. A body that
    is not JSON at all (an HTML page from a proxy, an empty body) is a malformed response,
    not drift: it is retried, and fails once every attempt got it."""
    malformed = observed in ("text/html", "empty body")
    fake.canned.extend([response] * (4 if malformed else 1))
    with pytest.raises(ContractViolation) as info:
        client.fetch_klines("BTCUSDT", "1h", *JAN_1)
    assert_violation(info.value, "BTCUSDT", *JAN_1, None)
    assert "payload" in str(info.value)
    assert observed in info.value.observed
    assert isinstance(info.value, MalformedResponse) == malformed
    assert len(fake.requests) == (4 if malformed else 1)


def test_an_html_page_from_a_proxy_is_retried(
    client: BinanceSpotClient, fake: FakeBinance, recorded: dict[str, list[Row]]
) -> None:
    """Issue 12, fault 7: a 200 HTML page (a proxy's error page) deserves a retry, and the
    next answer's klines are returned."""
    fake.canned.append(
        httpx.Response(200, content=b"<html>502</html>", headers={"Content-Type": "text/html"})
    )
    table = client.fetch_klines("BTCUSDT", "1h", *JAN_1)
    assert table_rows(table) == rows_between(recorded, "BTCUSDT", *JAN_1)
    assert len(fake.requests) == 2


@pytest.mark.parametrize("cut", [1, 4096, 40_000])
def test_truncated_real_page_is_a_payload_violation(
    client: BinanceSpotClient, fake: FakeBinance, cut: int
) -> None:
    """Guards against a connection cut mid-body being parsed into a partial page."""
    body = month_file("BTCUSDT", "2023-01").read_bytes()
    assert len(body) > cut
    start, end = ms("2023-01-01T00:00"), ms("2023-01-31T23:00")
    fake.canned.extend(
        [httpx.Response(200, content=body[:cut], headers={"Content-Type": "application/json"})] * 4
    )
    with pytest.raises(MalformedResponse) as info:
        client.fetch_klines("BTCUSDT", "1h", start, end)
    assert_violation(info.value, "BTCUSDT", start, end, None)
    assert "application/json" in info.value.observed


@pytest.mark.parametrize(
    "page_slice",
    [pytest.param(slice(0, 24), id="starts-before"), pytest.param(slice(1, 25), id="ends-after")],
)
def test_open_time_outside_requested_range(
    client: BinanceSpotClient,
    fake: FakeBinance,
    recorded: dict[str, list[Row]],
    page_slice: slice,
) -> None:
    """Guards against a server ignoring startTime/endTime and the client storing foreign hours."""
    start, end = ms("2023-01-01T01:00"), ms("2023-01-01T23:00")
    fake.canned.append(httpx.Response(200, json=recorded["BTCUSDT"][page_slice]))
    with pytest.raises(ContractViolation) as info:
        client.fetch_klines("BTCUSDT", "1h", start, end)
    assert_violation(info.value, "BTCUSDT", start, end, "open_time")
    assert "within" in info.value.expected


def test_violation_on_a_later_page_names_that_page(
    client: BinanceSpotClient, fake: FakeBinance, recorded: dict[str, list[Row]]
) -> None:
    """Guards against error messages that point at the wrong request of a paginated fetch."""
    start, end = ms("2023-01-01T00:00"), ms("2023-03-31T23:00")
    page_2 = [list(r) for r in recorded["BTCUSDT"][1000:2000]]
    page_2[17][4] = "NaN"
    fake.canned.extend([fake.serve, httpx.Response(200, json=page_2)])
    with pytest.raises(ContractViolation) as info:
        client.fetch_klines("BTCUSDT", "1h", start, end)
    assert_violation(info.value, "BTCUSDT", recorded["BTCUSDT"][999][0] + 1, end, "close")
    assert "record 17" in info.value.observed


# --------------------------------------------------------------------------------------------
# Types of the returned table
# --------------------------------------------------------------------------------------------


def test_table_types(client: BinanceSpotClient) -> None:
    """Guards against float prices, naive/second-resolution timestamps or int32 trades."""
    table = client.fetch_klines("BTCUSDT", "1h", *JAN_1)
    schema = table.schema
    assert table.column_names == KLINE_CONTRACT.names
    for name in ("open_time", "close_time"):
        assert schema.field(name).type == pa.timestamp("ms", tz="UTC")
    for name in DECIMAL_NAMES:
        assert schema.field(name).type == pa.decimal128(38, 8)
    assert schema.field("trades").type == pa.int64()
    assert schema.field("ignore").type == pa.string()
    first = table.slice(0, 1).to_pylist()[0]
    assert first["open_time"] == datetime(2023, 1, 1, tzinfo=UTC)
    assert first["close_time"] == datetime(2023, 1, 1, 0, 59, 59, 999_000, tzinfo=UTC)


def test_january_volume_sum_is_exact(
    client: BinanceSpotClient, recorded: dict[str, list[Row]]
) -> None:
    """Guards against float accumulation: the decimal sum equals the exact Decimal sum."""
    start, end = ms("2023-01-01T00:00"), ms("2023-01-31T23:00")
    table = client.fetch_klines("BTCUSDT", "1h", start, end)
    expected_rows = rows_between(recorded, "BTCUSDT", start, end)
    assert table.num_rows == 744
    for name, index in (("volume", 5), ("quote_volume", 7)):
        expected = sum(Decimal(r[index]) for r in expected_rows)
        total = pc.sum(table[name]).as_py()
        assert total == expected, name
    assert pc.sum(table["trades"]).as_py() == sum(r[8] for r in expected_rows)
