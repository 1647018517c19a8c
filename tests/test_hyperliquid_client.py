"""Tests of HyperliquidClient against the Hyperliquid replay of the recorded real responses.

The client talks real HTTP to a ReplayServer with the HyperliquidHandler mounted (it is not in
``default_handlers`` yet). Expected values are parsed here from the cassettes; errors and
malformed payloads are injected in front of the replay with ``ReplayServer.inject``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest
import yaml

from mkt_platform.defs.hyperliquid.contract import (
    ASSET_CTX_LAKE_SCHEMA,
    CANDLE_LAKE_SCHEMA,
    FINE,
    FUNDING_LAKE_SCHEMA,
)
from mkt_platform.defs.hyperliquid.resources import (
    HyperliquidAPIError,
    HyperliquidClient,
    HyperliquidRetryableResponse,
    HyperliquidTransportError,
)
from mkt_platform.lib.contracts import PRICE, ContractViolation, MalformedResponse
from mkt_platform.replay import ReplayServer, Response
from mkt_platform.replay.hyperliquid import HyperliquidHandler
from mkt_platform.testing.synthetic_hyperliquid import write_synthetic_candles

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
HL_DIR = DATA_DIR / "hyperliquid"
HOUR_MS = 3_600_000
MINUTE_MS = 60_000


def ms(text: str) -> int:
    """UTC ISO timestamp -> epoch milliseconds."""
    return round(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def iso(ms_value: int) -> str:
    """Epoch milliseconds -> the ISO form the client puts in its error messages."""
    return datetime.fromtimestamp(ms_value / 1000, UTC).isoformat(timespec="milliseconds")


def recorded(cassette: str, kind: str) -> Any:
    interactions = yaml.safe_load((HL_DIR / cassette).read_text())["interactions"]
    (body,) = [
        i["response"]["body"]["string"]
        for i in interactions
        if json.loads(i["request"]["body"])["type"] == kind
    ]
    return json.loads(body)


CANDLES: list[dict[str, Any]] = recorded(
    "vcr_meta+candleSnapshot_kPEPE_1h_2023-05-21.yaml", "candleSnapshot"
)
FUNDING: list[dict[str, Any]] = recorded(
    "vcr_meta+fundingHistory_BTC_2023-05-12_to_2023-07-17.yaml", "fundingHistory"
)
META: dict[str, Any] = recorded("vcr_meta+candleSnapshot_kPEPE_1h_2023-05-21.yaml", "meta")
KPEPE_START, KPEPE_END = 1684702007000, 1684784807000  # the recorded request
FIRST_OPEN, LAST_OPEN = CANDLES[0]["t"], CANDLES[-1]["t"]
# The SDK cassette's BTC funding span: it ends at its last record (the freqtrade BTC funding
# recording goes on after it, with premium null).
FUNDING_RANGE = (ms("2023-04-19T00:00"), ms("2023-07-17T21:00:00.065"))
SHARED_HANDLER = HyperliquidHandler(HL_DIR)


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    """One server for the module; tests see their own requests through ``seen``. Tests that
    inject responses inject exactly as many as they consume."""
    with ReplayServer(DATA_DIR, handlers={"hyperliquid": SHARED_HANDLER}) as server:
        yield server


class Seen:
    """The requests that reached the replay since the test started."""

    def __init__(self, server: ReplayServer) -> None:
        self.server = server
        self.start = server.request_count("hyperliquid")

    def count(self) -> int:
        return self.server.request_count("hyperliquid") - self.start

    def bodies(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.server.requests("hyperliquid")[self.start :]]


@pytest.fixture
def seen(server: ReplayServer) -> Seen:
    return Seen(server)


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def make_client(server: ReplayServer, waits: list[float]) -> Callable[..., HyperliquidClient]:
    """A client on the replay that records retry waits instead of sleeping."""

    def make(**config: Any) -> HyperliquidClient:
        config.setdefault("base_url", server.base_url("hyperliquid"))
        return HyperliquidClient(**config).with_transport(None, sleep=waits.append)

    return make


@pytest.fixture
def client(make_client: Callable[..., HyperliquidClient]) -> HyperliquidClient:
    return make_client(max_attempts=4)


def ints(column: pa.ChunkedArray) -> list[int]:
    """A timestamp column as epoch milliseconds (exact, not through float seconds)."""
    return column.cast(pa.int64()).to_pylist()


def candle_rows(table: pa.Table) -> list[dict[str, Any]]:
    """The table back in Hyperliquid's wire form, for comparison with the recording."""
    columns = {
        "t": ints(table["open_time"]),
        "T": ints(table["close_time"]),
        "s": table["coin"].to_pylist(),
        "i": table["interval"].to_pylist(),
        "o": table["open"].to_pylist(),
        "h": table["high"].to_pylist(),
        "l": table["low"].to_pylist(),
        "c": table["close"].to_pylist(),
        "v": table["volume"].to_pylist(),
        "n": table["trades"].to_pylist(),
    }
    return [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]


def as_decimals(candle: dict[str, Any]) -> dict[str, Any]:
    return {k: Decimal(v) if k in "ohlcv" else v for k, v in candle.items()}


# --------------------------------------------------------------------------------------------
# Candles
# --------------------------------------------------------------------------------------------


def test_recorded_kpepe_candles_come_back_exactly(client: HyperliquidClient, seen: Seen) -> None:
    """Guards against lost/altered candles and prices going through float."""
    table = client.fetch_candles("kPEPE", "1h", FIRST_OPEN, LAST_OPEN)
    assert table.num_rows == 24
    assert table.schema.equals(CANDLE_LAKE_SCHEMA)
    assert candle_rows(table) == [as_decimals(c) for c in CANDLES]
    assert table["volume"][0].as_py() == Decimal("520665683.0")
    assert table["open"][0].as_py() == Decimal("0.001601")
    assert seen.bodies() == [
        {
            "type": "candleSnapshot",
            "req": {
                "coin": "kPEPE",
                "interval": "1h",
                "startTime": FIRST_OPEN,
                "endTime": LAST_OPEN,
            },
        }
    ]
    assert client.last_added_fields == ()


def test_candle_containing_start_is_dropped(client: HyperliquidClient, seen: Seen) -> None:
    """Guards the overlap semantics: the first candle Hyperliquid returns opens *before* a
    mid-candle startTime (the recorded request) and is outside [start_ms, end_ms]."""
    table = client.fetch_candles("kPEPE", "1h", KPEPE_START, KPEPE_END)
    opens = ints(table["open_time"])
    assert CANDLES[0]["t"] < KPEPE_START <= CANDLES[0]["T"]
    assert opens == [c["t"] for c in CANDLES[1:]]
    assert seen.count() == 1


def test_inverted_range_costs_no_request(client: HyperliquidClient, seen: Seen) -> None:
    table = client.fetch_candles("kPEPE", "1h", LAST_OPEN, FIRST_OPEN)
    assert table.num_rows == 0 and table.schema.equals(CANDLE_LAKE_SCHEMA)
    assert seen.count() == 0


def test_candle_pagination_over_synthetic_minutes(tmp_path: Path, waits: list[float]) -> None:
    """Guards pagination at the 5000-candle cap: 12001 SYNTHETIC 1m candles in 3 requests,
    next startTime = last open + interval, nothing lost or duplicated."""
    start = ms("2024-03-01T00:00")
    end = start + 12_000 * MINUTE_MS
    path = write_synthetic_candles(tmp_path, "ETH", "1m", start, end, seed=11, start_price="3000")
    expected = json.loads(path.read_text())
    handler = HyperliquidHandler(HL_DIR, synthetic_dir=tmp_path)
    with ReplayServer(DATA_DIR, handlers={"hyperliquid": handler}) as server:
        client = HyperliquidClient(base_url=server.base_url("hyperliquid"))
        table = client.with_transport(None, sleep=waits.append).fetch_candles(
            "ETH", "1m", start + 1, end
        )
        starts = [r.json()["req"]["startTime"] for r in server.requests("hyperliquid")]
    assert starts == [start + 1, start + 5000 * MINUTE_MS, start + 10_000 * MINUTE_MS]
    assert table.num_rows == 12_000  # the candle containing start + 1 opens before it
    assert candle_rows(table) == [as_decimals(c) for c in expected[1:]]


def test_unrecorded_coin_fails_at_once_with_the_body(
    client: HyperliquidClient, waits: list[float], seen: Seen
) -> None:
    """Guards a 4xx being retried, or losing the body and the request in the message (DOGE
    has no recording)."""
    with pytest.raises(HyperliquidAPIError) as info:
        client.fetch_candles("DOGE", "1h", FIRST_OPEN, LAST_OPEN)
    error = info.value
    assert error.status == 404
    assert "replay: no recording of candleSnapshot coin=DOGE interval=1h" in error.body
    message = str(error)
    assert "POST /info type=candleSnapshot coin=DOGE interval=1h" in message
    assert f"[{iso(FIRST_OPEN)}, {iso(LAST_OPEN)}]" in message
    assert "no recording" in message
    assert seen.count() == 1 and waits == []


def test_unknown_interval_is_refused_before_any_request(
    client: HyperliquidClient, seen: Seen
) -> None:
    with pytest.raises(ValueError, match="interval"):
        client.fetch_candles("kPEPE", "2d", FIRST_OPEN, LAST_OPEN)
    assert seen.count() == 0


# --------------------------------------------------------------------------------------------
# Funding history
# --------------------------------------------------------------------------------------------


def test_btc_funding_history_in_three_pages(client: HyperliquidClient, seen: Seen) -> None:
    """Guards time pagination (500 a page, next startTime = last time + 1) and exact rates."""
    table = client.fetch_funding_history("BTC", *FUNDING_RANGE)
    assert table.num_rows == 1038
    assert table.schema.equals(FUNDING_LAKE_SCHEMA)
    assert seen.count() == 3
    starts = [b["startTime"] for b in seen.bodies()]
    assert starts == [FUNDING_RANGE[0], FUNDING[499]["time"] + 1, FUNDING[999]["time"] + 1]
    assert all(b["endTime"] == FUNDING_RANGE[1] for b in seen.bodies())
    rows = table.to_pylist()
    assert ints(table["time"]) == [f["time"] for f in FUNDING]
    assert [r["funding_rate"] for r in rows] == [Decimal(f["fundingRate"]) for f in FUNDING]
    assert [r["premium"] for r in rows] == [Decimal(f["premium"]) for f in FUNDING]
    assert {r["coin"] for r in rows} == {"BTC"}


def test_switch_from_8_hourly_to_hourly_funding_on_2023_06_08(client: HyperliquidClient) -> None:
    """Guards the real cadence change being visible (and times kept with their ms jitter)."""
    table = client.fetch_funding_history("BTC", *FUNDING_RANGE)
    times = ints(table["time"])
    switch = ms("2023-06-08T00:00")
    gaps_before = {
        round((b - a) / HOUR_MS) for a, b in itertools.pairwise(times) if b <= switch + 1000
    }
    gaps_after = [round((b - a) / HOUR_MS) for a, b in itertools.pairwise(times) if a >= switch]
    assert gaps_before == {8}
    assert sorted(set(gaps_after)) == [1, 2] and gaps_after.count(2) == 1
    assert times[0] == ms("2023-05-12T00:00:00.048")  # jitter kept, not floored


def test_funding_sub_range_is_one_request_with_inclusive_bounds(
    client: HyperliquidClient, seen: Seen
) -> None:
    start, end = FUNDING[100]["time"], FUNDING[150]["time"]
    table = client.fetch_funding_history("BTC", start, end)
    assert table["funding_rate"].to_pylist() == [
        Decimal(f["fundingRate"]) for f in FUNDING[100:151]
    ]
    assert seen.count() == 1


def test_funding_table_types(client: HyperliquidClient) -> None:
    table = client.fetch_funding_history("BTC", FUNDING[0]["time"], FUNDING[0]["time"])
    assert table.schema.field("time").type == pa.timestamp("ms", tz="UTC")
    assert table.schema.field("funding_rate").type == FINE == pa.decimal128(38, 12)
    assert table.to_pylist()[0]["funding_rate"] == Decimal("-0.00061334")


# --------------------------------------------------------------------------------------------
# Asset contexts
# --------------------------------------------------------------------------------------------


def test_asset_contexts_one_row_per_meta_coin(client: HyperliquidClient, seen: Seen) -> None:
    """Guards the zip of meta and ctxs (same order), nullable fields and exact decimals."""
    table = client.fetch_asset_contexts()
    assert table.schema.equals(ASSET_CTX_LAKE_SCHEMA)
    assert table.num_rows == 28
    assert table["coin"].to_pylist() == [a["name"] for a in META["universe"]]
    btc = table.slice(0, 1).to_pylist()[0]
    assert btc["coin"] == "BTC"
    assert btc["mark_px"] == Decimal("77562.0")
    assert (btc["impact_bid_px"], btc["impact_ask_px"]) == (Decimal("77558.0"), Decimal("77559.0"))
    assert btc["day_ntl_vlm"] == Decimal("1516669192.1953897476")  # 10 decimals, kept exactly
    assert btc["funding"] == Decimal("-0.0000015186")
    matic = table.slice(3, 1).to_pylist()[0]
    assert matic["coin"] == "MATIC"
    assert (matic["premium"], matic["mid_px"], matic["impact_bid_px"]) == (None, None, None)
    assert seen.bodies() == [{"type": "metaAndAssetCtxs"}]
    assert table.schema.field("mark_px").type == PRICE


# --------------------------------------------------------------------------------------------
# Retries
# --------------------------------------------------------------------------------------------


def test_429_waits_retry_after_then_succeeds(
    client: HyperliquidClient, server: ReplayServer, waits: list[float], seen: Seen
) -> None:
    server.inject("hyperliquid", [Response(429, {"Retry-After": "7"}, b"rate limited")])
    assert client.fetch_asset_contexts().num_rows == 28
    assert waits == [7.0]
    assert seen.count() == 2
    first, second = seen.bodies()
    assert first == second


def test_retry_during_pagination_keeps_the_cursor(
    client: HyperliquidClient, server: ReplayServer, waits: list[float], seen: Seen
) -> None:
    """Guards a retried page skipping or repeating records."""
    client.fetch_funding_history("BTC", FUNDING[0]["time"], FUNDING[0]["time"])  # warm request
    server.inject("hyperliquid", [Response(503, {}, b"unavailable")])
    table = client.fetch_funding_history("BTC", FUNDING[0]["time"], FUNDING[599]["time"])
    assert table.num_rows == 600
    starts = [b["startTime"] for b in seen.bodies()][1:]
    assert starts == [FUNDING[0]["time"], FUNDING[0]["time"], FUNDING[499]["time"] + 1]
    assert len(waits) == 1 and 0 < waits[0] <= client.backoff_max_seconds


def test_5xx_every_time_raises_after_max_attempts(
    make_client: Callable[..., HyperliquidClient],
    server: ReplayServer,
    waits: list[float],
    seen: Seen,
) -> None:
    client = make_client(max_attempts=3)
    server.inject("hyperliquid", [Response(502, {}, b"bad gateway")] * 3)  # exactly consumed
    with pytest.raises(HyperliquidRetryableResponse) as info:
        client.fetch_asset_contexts()
    assert info.value.status == 502
    assert "type=metaAndAssetCtxs" in str(info.value)
    assert seen.count() == 3 and len(waits) == 2


def test_retry_after_beyond_the_maximum_fails_at_once(
    make_client: Callable[..., HyperliquidClient],
    server: ReplayServer,
    waits: list[float],
    seen: Seen,
) -> None:
    client = make_client(retry_after_max_seconds=60.0)
    server.inject("hyperliquid", [Response(429, {"Retry-After": "61"}, b"slow down")])
    with pytest.raises(HyperliquidAPIError) as info:
        client.fetch_asset_contexts()
    assert info.value.status == 429
    assert seen.count() == 1 and waits == []


def test_422_plain_text_fails_at_once_with_the_body(
    client: HyperliquidClient, server: ReplayServer, waits: list[float], seen: Seen
) -> None:
    """Guards the live API's plain-text 4xx (not JSON) being retried or lost."""
    body = b"Failed to deserialize the JSON body into the target type"
    server.inject("hyperliquid", [Response(422, {"Content-Type": "text/plain"}, body)])
    with pytest.raises(HyperliquidAPIError) as info:
        client.fetch_funding_history("BTC", *FUNDING_RANGE)
    assert info.value.status == 422
    assert body.decode() in str(info.value)
    assert "type=fundingHistory coin=BTC" in str(info.value)
    assert iso(FUNDING_RANGE[0]) in str(info.value)
    assert seen.count() == 1 and waits == []


def test_transport_error_every_time_raises_transport_error(waits: list[float]) -> None:
    """Guards swallowing a persistent connection failure or not retrying it."""
    with ReplayServer(DATA_DIR, handlers={"hyperliquid": SHARED_HANDLER}) as dead:
        base_url = dead.base_url("hyperliquid")  # closed once the block exits
    client = HyperliquidClient(base_url=base_url, max_attempts=2).with_transport(
        None, sleep=waits.append
    )
    with pytest.raises(HyperliquidTransportError) as info:
        client.fetch_candles("kPEPE", "1h", FIRST_OPEN, LAST_OPEN)
    assert isinstance(info.value.__cause__, httpx.TransportError)
    assert "coin=kPEPE" in str(info.value) and iso(FIRST_OPEN) in str(info.value)
    assert len(waits) == 1


def test_timeouts_are_set() -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=[META, []])

    client = HyperliquidClient(base_url="https://hl.test", timeout_seconds=2.0)
    client.with_transport(httpx.MockTransport(answer))
    with pytest.raises(ContractViolation):  # 28 coins, 0 ctxs
        client.fetch_asset_contexts()
    assert sent[0].extensions["timeout"] == {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}
    assert str(sent[0].url) == "https://hl.test/info"


# --------------------------------------------------------------------------------------------
# Contract violations and added fields
# --------------------------------------------------------------------------------------------


def candles_with(change: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    rows = [dict(c) for c in CANDLES]
    change(rows[5])
    return rows


@pytest.mark.parametrize(
    ("payload", "field", "observed"),
    [
        pytest.param(
            candles_with(lambda c: c.pop("v")), "v", "key missing in record 5", id="missing-v"
        ),
        pytest.param(
            candles_with(lambda c: c.update(c=0.001604)),
            "c",
            "0.001604 (float)",
            id="number-for-string",
        ),
        pytest.param(candles_with(lambda c: c.update(h="abc")), "h", "'abc'", id="non-numeric"),
        pytest.param(
            candles_with(lambda c: c.update(t="1684717200000")), "t", "(str)", id="string-time"
        ),
        pytest.param(candles_with(lambda c: c.pop("n")), "n", "key missing", id="missing-trades"),
        pytest.param(candles_with(lambda c: c.update(n="709")), "n", "'709'", id="string-trades"),
        pytest.param(
            candles_with(lambda c: c.update(o="0.000000001")), "o", "0.000000001", id="9-decimals"
        ),
        pytest.param(
            candles_with(lambda c: c.update(v="1" * 31)), "v", "1111", id="31-integer-digits"
        ),
        pytest.param(candles_with(lambda c: c.update(s="PEPE")), "s", "'PEPE'", id="other-coin"),
        pytest.param(
            candles_with(lambda c: c.update(T=c["T"] + 1)), "T", "T=", id="bad-close-time"
        ),
        pytest.param(
            [*CANDLES[:3], CANDLES[4], CANDLES[3], *CANDLES[5:]], "t", "after", id="not-ascending"
        ),
    ],
)
def test_malformed_candle_names_the_field(
    client: HyperliquidClient,
    server: ReplayServer,
    payload: list[dict[str, Any]],
    field: str,
    observed: str,
    seen: Seen,
) -> None:
    """Guards against storing a candle that breaks the contract, or an unhelpful error."""
    server.inject("hyperliquid", [Response.json(payload)])
    with pytest.raises(ContractViolation) as info:
        client.fetch_candles("kPEPE", "1h", FIRST_OPEN, LAST_OPEN)
    error = info.value
    assert error.dataset == "hyperliquid_candles"
    assert error.field == field
    assert observed in error.observed
    assert "POST /info type=candleSnapshot coin=kPEPE interval=1h" in error.source
    assert f"[{iso(FIRST_OPEN)}, {iso(LAST_OPEN)}]" in error.source
    assert f"field {field!r}" in str(error)
    assert seen.count() == 1  # a violation is not retried


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param(lambda r: r.pop("premium"), "premium", id="missing-premium"),
        pytest.param(lambda r: r.update(premium=0.00007028), "premium", id="float-premium"),
        pytest.param(lambda r: r.update(fundingRate=1.25e-05), "fundingRate", id="float-rate"),
        pytest.param(
            lambda r: r.update(fundingRate="0.0000000000001"), "fundingRate", id="13-decimals"
        ),
        pytest.param(lambda r: r.update(time=None), "time", id="null-time"),
        pytest.param(lambda r: r.update(coin="ETH"), "coin", id="other-coin"),
    ],
)
def test_malformed_funding_names_the_field(
    client: HyperliquidClient,
    server: ReplayServer,
    change: Callable[[dict[str, Any]], None],
    field: str,
) -> None:
    rows = [dict(r) for r in FUNDING[:10]]
    change(rows[2])
    server.inject("hyperliquid", [Response.json(rows)])
    with pytest.raises(ContractViolation) as info:
        client.fetch_funding_history("BTC", *FUNDING_RANGE)
    assert info.value.dataset == "hyperliquid_funding"
    assert info.value.field == field
    assert "type=fundingHistory coin=BTC" in info.value.source


def test_null_trades_and_premium_are_stored_as_null(
    client: HyperliquidClient, server: ReplayServer
) -> None:
    """Guards the two nullable fields (the replay's freqtrade recordings lack them): null
    is stored as NULL, never as 0, and every other value of the record is kept."""
    candles = candles_with(lambda c: c.update(n=None))
    records = [dict(r) for r in FUNDING[:10]]
    records[2]["premium"] = None
    server.inject("hyperliquid", [Response.json(candles), Response.json(records)])
    table = client.fetch_candles("kPEPE", "1h", FIRST_OPEN, LAST_OPEN)
    trades = table["trades"].to_pylist()
    assert trades == [None if i == 5 else c["n"] for i, c in enumerate(CANDLES)]
    assert table["close"][5].as_py() == Decimal(CANDLES[5]["c"])
    funding = client.fetch_funding_history("BTC", FUNDING[0]["time"], FUNDING[9]["time"])
    premiums = funding["premium"].to_pylist()
    assert premiums == [
        None if i == 2 else Decimal(r["premium"]) for i, r in enumerate(FUNDING[:10])
    ]
    assert funding["funding_rate"][2].as_py() == Decimal(FUNDING[2]["fundingRate"])


def ctxs_payload(change: Callable[[list[dict[str, Any]]], None]) -> list[Any]:
    ctxs = [
        dict(c)
        for c in json.loads((HL_DIR / "ws_allDexsAssetCtxs_snapshot_2026.json").read_text())[
            "data"
        ]["ctxs"][0][1][:28]
    ]
    change(ctxs)
    return [META, ctxs]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        pytest.param(ctxs_payload(lambda c: c[0].update(markPx=None)), "markPx", id="null-mark"),
        pytest.param(ctxs_payload(lambda c: c[1].pop("oraclePx")), "oraclePx", id="missing-oracle"),
        pytest.param(
            ctxs_payload(lambda c: c[2].update(impactPxs="2.1")),
            "impactPxs[0]",
            id="impact-not-array",
        ),
        pytest.param(
            ctxs_payload(lambda c: c[2].update(openInterest=12.5)), "openInterest", id="number-oi"
        ),
        pytest.param(ctxs_payload(lambda c: c.pop()), None, id="27-ctxs-for-28-coins"),
        pytest.param({"universe": []}, None, id="not-a-pair"),
    ],
)
def test_malformed_asset_contexts(
    client: HyperliquidClient, server: ReplayServer, payload: Any, field: str | None
) -> None:
    server.inject("hyperliquid", [Response.json(payload)])
    with pytest.raises(ContractViolation) as info:
        client.fetch_asset_contexts()
    assert info.value.dataset == "hyperliquid_asset_ctxs"
    assert info.value.field == field
    assert "type=metaAndAssetCtxs" in info.value.source


def test_added_fields_are_reported_not_errors(
    client: HyperliquidClient, server: ReplayServer
) -> None:
    """Guards schema drift failing the run (it must be surfaced, not fatal)."""
    rows = [dict(c) for c in CANDLES]
    rows[0]["q"] = "123.4"
    rows[7]["isFinal"] = True
    server.inject("hyperliquid", [Response.json(rows)])
    table = client.fetch_candles("kPEPE", "1h", FIRST_OPEN, LAST_OPEN)
    assert table.num_rows == 24
    assert table.column_names == CANDLE_LAKE_SCHEMA.names
    assert client.last_added_fields == ("isFinal", "q")

    server.inject("hyperliquid", [Response.json(ctxs_payload(lambda c: c[0].update(newField="1")))])
    assert client.fetch_asset_contexts().num_rows == 28
    assert client.last_added_fields == ("newField",)
    # The next clean fetch resets it.
    client.fetch_candles("kPEPE", "1h", FIRST_OPEN, LAST_OPEN)
    assert client.last_added_fields == ()


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(Response(200, {"Content-Type": "text/html"}, b"<html>502</html>"), id="html"),
        pytest.param(Response(200, {}, b""), id="empty"),
        pytest.param(Response.json({"error": "weird"}), id="object"),
    ],
)
def test_malformed_body_is_a_payload_violation(
    client: HyperliquidClient, server: ReplayServer, response: Response
) -> None:
    malformed = response.body in (b"<html>502</html>", b"")  # not JSON: retried
    server.inject("hyperliquid", [response] * (4 if malformed else 1))
    with pytest.raises(ContractViolation) as info:
        client.fetch_candles("kPEPE", "1h", FIRST_OPEN, LAST_OPEN)
    assert isinstance(info.value, MalformedResponse) == malformed
    assert info.value.field is None
    assert info.value.dataset == "hyperliquid_candles"
