"""Tests of the Hyperliquid replay handler (POST /info) against the recordings in shared/data.

The expected values are parsed here, independently of the handler, from the VCR cassettes,
the freqtrade files (SOURCES.md section 10) and the allDexsAssetCtxs message. The handler is not in ``default_handlers`` yet, so the tests
mount it themselves.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mkt_platform.replay import ReplayServer
from mkt_platform.replay.hyperliquid import HyperliquidHandler
from mkt_platform.testing.synthetic_hyperliquid import (
    INTERVAL_MS,
    synthetic_file_name,
    write_synthetic_candles,
)

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
HL_DIR = DATA_DIR / "hyperliquid"
CANDLE_CASSETTE = HL_DIR / "vcr_meta+candleSnapshot_kPEPE_1h_2023-05-21.yaml"
FUNDING_CASSETTE = HL_DIR / "vcr_meta+fundingHistory_BTC_2023-05-12_to_2023-07-17.yaml"
CTXS_FILE = HL_DIR / "ws_allDexsAssetCtxs_snapshot_2026.json"
HOUR_MS = 3_600_000
# The freqtrade recordings (SOURCES.md section 10): 1h perp candles and funding per coin.
FREQTRADE_COINS = ("BTC", "ETH", "SOL", "HYPE")


def freqtrade_file(coin: str, kind: str) -> list[list[Any]]:
    """The rows of ``freqtrade_hyperliquid_{coin}_USDC-1h-{kind}.json`` (kind perp, spot,
    funding)."""
    return json.loads((HL_DIR / f"freqtrade_hyperliquid_{coin}_USDC-1h-{kind}.json").read_text())


# The recorded candleSnapshot request (startTime is 2023-05-21 20:46:47 UTC).
KPEPE_START, KPEPE_END = 1684702007000, 1684784807000


def ms(text: str) -> int:
    """UTC ISO timestamp -> epoch milliseconds."""
    return round(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def cassette_bodies(path: Path) -> dict[str, str]:
    """Raw response body string of each interaction of a cassette, by request type."""
    interactions = yaml.safe_load(path.read_text())["interactions"]
    return {
        json.loads(i["request"]["body"])["type"]: i["response"]["body"]["string"]
        for i in interactions
    }


CANDLE_BODY = cassette_bodies(CANDLE_CASSETTE)["candleSnapshot"]
FUNDING_BODY = cassette_bodies(FUNDING_CASSETTE)["fundingHistory"]
META_BODY = cassette_bodies(CANDLE_CASSETTE)["meta"]
CANDLES: list[dict[str, Any]] = json.loads(CANDLE_BODY)
FUNDING: list[dict[str, Any]] = json.loads(FUNDING_BODY)


def main_dex_ctxs() -> list[dict[str, Any]]:
    ctxs = dict(json.loads(CTXS_FILE.read_text())["data"]["ctxs"])
    return ctxs[""]


@pytest.fixture(scope="module")
def handler() -> HyperliquidHandler:
    return HyperliquidHandler(HL_DIR)


@pytest.fixture(scope="module")
def shared_server(handler: HyperliquidHandler) -> Iterator[ReplayServer]:
    with ReplayServer(DATA_DIR, handlers={"hyperliquid": handler}) as server:
        yield server


@pytest.fixture(scope="module")
def client(shared_server: ReplayServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_server.base_url("hyperliquid"), timeout=10) as client:
        yield client


@pytest.fixture
def server(handler: HyperliquidHandler) -> Iterator[ReplayServer]:
    """A fresh server (own request count) around the shared, already loaded handler."""
    with ReplayServer(DATA_DIR, handlers={"hyperliquid": handler}) as server:
        yield server


def info(client: httpx.Client, body: Any) -> httpx.Response:
    return client.post("/info", json=body)


def candles(client: httpx.Client, coin: str, interval: str, start: int, end: int) -> httpx.Response:
    req = {"coin": coin, "interval": interval, "startTime": start, "endTime": end}
    return info(client, {"type": "candleSnapshot", "req": req})


def funding(client: httpx.Client, coin: str, start: int, end: int | None = None) -> httpx.Response:
    body: dict[str, Any] = {"type": "fundingHistory", "coin": coin, "startTime": start}
    if end is not None:
        body["endTime"] = end
    return info(client, body)


# -- the recordings themselves ----------------------------------------------------------------


def test_recordings_are_what_sources_md_says() -> None:
    """Guards the facts the other tests rely on (a changed file must fail loudly here)."""
    assert len(CANDLES) == 24
    assert CANDLES[0]["t"] == ms("2023-05-21T20:00") and CANDLES[-1]["t"] == ms("2023-05-22T19:00")
    assert len(FUNDING) == 1038
    assert FUNDING[0]["time"] == ms("2023-05-12T00:00:00.048")
    assert FUNDING[-1]["time"] == ms("2023-07-17T21:00:00.065")
    assert len(json.loads(META_BODY)["universe"]) == 28
    # Hyperliquid's own close-time rule, which the freqtrade candles are served with.
    assert all(c["T"] == c["t"] + HOUR_MS - 1 for c in CANDLES)
    assert all((c["s"], c["i"]) == ("kPEPE", "1h") for c in CANDLES)


@pytest.mark.parametrize(
    ("coin", "kind", "rows", "first", "last"),
    [
        *[(c, "perp", 7793, "2024-09-04T11:00", "2025-07-26T03:00") for c in ("BTC", "ETH", "SOL")],
        ("HYPE", "perp", 5588, "2024-12-05T09:00", "2025-07-26T04:00"),
        ("HYPE", "spot", 5733, "2024-11-29T07:00", "2025-07-26T03:00"),
        *[
            (c, "funding", 18778, "2023-05-12T00:00:00.048", "2025-07-26T03:00:00.027")
            for c in ("BTC", "ETH", "SOL")
        ],
        ("HYPE", "funding", 5587, "2024-12-05T10:00:00.004", "2025-07-26T04:00:00.029"),
    ],
)
def test_freqtrade_files_are_what_sources_md_says(
    coin: str, kind: str, rows: int, first: str, last: str
) -> None:
    data = freqtrade_file(coin, kind)
    assert len(data) == rows
    assert (data[0][0], data[-1][0]) == (ms(first), ms(last))
    if kind != "funding":
        assert all(b[0] - a[0] == HOUR_MS for a, b in itertools.pairwise(data))


# -- candleSnapshot ------------------------------------------------------------------------


def test_recorded_candle_request_is_served_byte_for_byte(client: httpx.Client) -> None:
    """Guards against re-serialising the recorded numbers (e.g. "520665683.0" -> 520665683)."""
    resp = candles(client, "kPEPE", "1h", KPEPE_START, KPEPE_END)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.text == CANDLE_BODY
    served = resp.json()
    assert len(served) == 24
    first = served[0]
    assert first["t"] <= KPEPE_START <= first["T"]  # the candle *containing* startTime
    for got, want in zip(served, CANDLES, strict=True):
        for key in "ochlv":
            assert Decimal(got[key]) == Decimal(want[key])
            assert type(got[key]) is str
        assert (got["t"], got["T"], got["n"]) == (want["t"], want["T"], want["n"])


@pytest.mark.parametrize(
    ("start", "end", "first", "last"),
    [
        pytest.param(CANDLES[3]["t"], CANDLES[5]["t"], 3, 5, id="on-open-times"),
        pytest.param(CANDLES[3]["t"] + 1, CANDLES[5]["t"], 3, 5, id="start-inside-a-candle"),
        pytest.param(CANDLES[2]["T"], CANDLES[5]["t"], 2, 5, id="start-on-a-close-time"),
        pytest.param(CANDLES[3]["t"], CANDLES[5]["t"] - 1, 3, 4, id="end-before-an-open"),
        pytest.param(CANDLES[3]["t"] + 5, CANDLES[3]["t"] + 5, 3, 3, id="instant"),
    ],
)
def test_candles_overlapping_the_range_are_served(
    client: httpx.Client, start: int, end: int, first: int, last: int
) -> None:
    """Guards the overlap semantics: close >= startTime and open <= endTime."""
    served = candles(client, "kPEPE", "1h", start, end).json()
    assert served == CANDLES[first : last + 1]


def test_candle_range_outside_the_recording_is_empty(client: httpx.Client) -> None:
    """Guards the documented behaviour for a recorded coin/interval outside its range."""
    resp = candles(client, "kPEPE", "1h", ms("2024-01-01T00:00"), ms("2024-01-02T00:00"))
    assert resp.status_code == 200
    assert resp.json() == []
    assert candles(client, "kPEPE", "1h", 10, 5).json() == []


@pytest.mark.parametrize(("coin", "interval"), [("BTC", "15m"), ("kPEPE", "15m"), ("DOGE", "1h")])
def test_unrecorded_candles_are_a_404_not_an_empty_list(
    client: httpx.Client, coin: str, interval: str
) -> None:
    """Guards against a gap in the recordings looking like real empty market data."""
    resp = candles(client, coin, interval, KPEPE_START, KPEPE_END)
    assert resp.status_code == 404
    assert resp.json() == {
        "error": f"replay: no recording of candleSnapshot coin={coin} interval={interval}"
    }


# -- fundingHistory ------------------------------------------------------------------------


def test_funding_pages_of_500_reassemble_the_recording(server: ReplayServer) -> None:
    """Guards the page size and the inclusive time bounds, paging like a client does."""
    # up to the cassette's last record: BTC's freqtrade funding goes on after it
    start, end = ms("2023-04-19T00:00"), FUNDING[-1]["time"]
    records: list[dict[str, Any]] = []
    sizes = []
    with httpx.Client(base_url=server.base_url("hyperliquid")) as client:
        while True:
            page = funding(client, "BTC", start, end).json()
            sizes.append(len(page))
            records.extend(page)
            if len(page) < 500:
                break
            start = page[-1]["time"] + 1
    assert sizes == [500, 500, 38]
    assert server.request_count("hyperliquid") == 3
    assert records == FUNDING


def test_funding_without_end_time_and_inclusive_bounds(client: httpx.Client) -> None:
    """Guards endTime being optional and both bounds being inclusive on ``time``."""
    assert funding(client, "BTC", 0).json() == FUNDING[:500]
    t = FUNDING[600]["time"]
    assert funding(client, "BTC", t, t).json() == [FUNDING[600]]
    assert funding(client, "BTC", t + 1, FUNDING[602]["time"] - 1).json() == [FUNDING[601]]


def test_funding_serves_the_recorded_strings(client: httpx.Client) -> None:
    """Guards against rates going through float ("0.0000125" must not become 1.25e-05)."""
    resp = funding(client, "BTC", FUNDING[-1]["time"], FUNDING[-1]["time"])
    assert (
        resp.text
        == '[{"coin":"BTC","fundingRate":"0.0000125","premium":"0.00007028","time":1689627600065}]'
    )
    assert resp.text[1:-1] in FUNDING_BODY


def test_funding_of_an_unrecorded_coin_is_a_404(client: httpx.Client) -> None:
    resp = funding(client, "kPEPE", 0)
    assert resp.status_code == 404
    assert resp.json() == {"error": "replay: no recording of fundingHistory coin=kPEPE"}
    # An unrecorded *range* of a recorded coin is an empty answer (documented).
    assert funding(client, "BTC", 0, ms("2023-05-01T00:00")).json() == []


# -- freqtrade recordings (SOURCES.md section 10) -------------------------------------------


def all_candles(client: httpx.Client, coin: str, start: int, end: int) -> list[dict[str, Any]]:
    """Every candle of ``coin`` 1h opening in [start, end], paged as the platform's client."""
    served: list[dict[str, Any]] = []
    while start <= end:
        page = candles(client, coin, "1h", start, end).json()
        if not page:
            break
        served.extend(c for c in page if c["t"] >= start)
        start = page[-1]["T"] + 1
    return served


def all_funding(client: httpx.Client, coin: str, start: int, end: int) -> list[dict[str, Any]]:
    """Every funding record of ``coin`` in [start, end], in pages of 500 as clients page."""
    records: list[dict[str, Any]] = []
    while True:
        page = funding(client, coin, start, end).json()
        records.extend(page)
        if len(page) < 500:
            return records
        start = page[-1]["time"] + 1


def assert_decimal_string(text: Any, recorded: float) -> None:
    """Hyperliquid's decimal string of a recorded float: positional, reads back as the same
    float, the shortest such decimal, with ".0" on an integral value."""
    assert type(text) is str
    assert "e" not in text.lower()
    assert float(text) == recorded
    assert Decimal(text) == Decimal(repr(recorded))
    assert "." in text


@pytest.mark.parametrize(
    ("coin", "kind", "served_as"),
    [
        *[(c, "perp", c) for c in FREQTRADE_COINS],
        ("HYPE", "spot", "@107"),
    ],
)
def test_freqtrade_candles_are_served_as_hyperliquid_candles(
    client: httpx.Client, coin: str, kind: str, served_as: str
) -> None:
    """Guards the conversion: every recorded candle, each value exactly the recorded float as
    a decimal string, T/s/i by Hyperliquid's rule, n null (never invented)."""
    rows = freqtrade_file(coin, kind)
    served = all_candles(client, served_as, rows[0][0] - 5 * HOUR_MS, rows[-1][0] + 5 * HOUR_MS)
    assert [c["t"] for c in served] == [row[0] for row in rows]
    for candle, row in zip(served, rows, strict=True):
        assert list(candle) == list(CANDLES[0])  # Hyperliquid's key order
        assert candle["T"] == row[0] + HOUR_MS - 1
        assert (candle["s"], candle["i"], candle["n"]) == (served_as, "1h", None)
        for key, value in zip("ohlcv", row[1:], strict=True):
            assert_decimal_string(candle[key], value)


def test_freqtrade_candle_strings_byte_for_byte(client: httpx.Client) -> None:
    """Guards the exact wire text: BTC's first two recorded hours, integral prices with ".0"."""
    t = ms("2024-09-04T11:00")
    resp = candles(client, "BTC", "1h", t + 1, t + HOUR_MS)
    assert resp.text == (
        '[{"T":1725451199999,"c":"56584.0","h":"56680.0","i":"1h","l":"56456.0","n":null,'
        '"o":"56461.0","s":"BTC","t":1725447600000,"v":"75.67353"},'
        '{"T":1725454799999,"c":"56620.0","h":"56777.0","i":"1h","l":"56500.0","n":null,'
        '"o":"56581.0","s":"BTC","t":1725451200000,"v":"91.58561"}]'
    )


def test_freqtrade_candles_keep_the_snapshot_semantics(client: httpx.Client) -> None:
    """Guards the 5000 cap and the first candle being the one containing startTime."""
    rows = freqtrade_file("ETH", "perp")
    start = rows[10][0] + 1234
    served = candles(client, "ETH", "1h", start, rows[-1][0]).json()
    assert len(served) == 5000
    assert served[0]["t"] == rows[10][0] and served[-1]["t"] == rows[5009][0]
    # Outside the recording: empty, as documented (no candle is invented).
    assert candles(client, "ETH", "1h", ms("2024-01-01T00:00"), ms("2024-09-04T10:59")).json() == []


@pytest.mark.parametrize("coin", ["ETH", "SOL", "HYPE"])
def test_freqtrade_funding_is_served_as_hyperliquid_funding(
    client: httpx.Client, coin: str
) -> None:
    """Guards the conversion: every record, rate exactly the recorded float, premium null."""
    rows = freqtrade_file(coin, "funding")
    served = all_funding(client, coin, 0, ms("2025-08-01T00:00"))
    assert [r["time"] for r in served] == [row[0] for row in rows]
    for record, (_, rate) in zip(served, rows, strict=True):
        assert list(record) == ["coin", "fundingRate", "premium", "time"]
        assert (record["coin"], record["premium"]) == (coin, None)
        assert_decimal_string(record["fundingRate"], rate)


def test_funding_rate_in_exponent_form_is_written_positionally(client: httpx.Client) -> None:
    """Guards against "1.25e-05" reaching the wire: Hyperliquid writes "0.0000125"."""
    last = freqtrade_file("BTC", "funding")[-1]
    assert repr(last[1]) == "3.09605e-05"
    resp = funding(client, "BTC", last[0], last[0])
    assert resp.text == (
        '[{"coin":"BTC","fundingRate":"0.0000309605","premium":null,"time":1753498800027}]'
    )


def test_btc_funding_cassette_wins_inside_its_span(client: httpx.Client) -> None:
    """Guards the overlap rule: inside the cassette's span only the cassette (the API's own
    bytes) is served, the freqtrade file only outside it; the two agree in the span."""
    rows = freqtrade_file("BTC", "funding")
    served = all_funding(client, "BTC", 0, ms("2025-08-01T00:00"))
    assert [r["time"] for r in served] == [row[0] for row in rows]  # one record per time
    span = len(FUNDING)
    assert served[:span] == FUNDING
    assert all(r["premium"] is None for r in served[span:])
    for record, (_, rate) in zip(served[span:], rows[span:], strict=True):
        assert_decimal_string(record["fundingRate"], rate)
    # The freqtrade rates the cassette replaces are the same rates at 10 decimals.
    for record, (time, rate) in zip(FUNDING, rows[:span], strict=True):
        assert record["time"] == time
        assert abs(Decimal(record["fundingRate"]) - Decimal(repr(rate))) <= Decimal("5e-9")
    # A page crossing the span's end: cassette records, then freqtrade ones.
    page = funding(client, "BTC", FUNDING[-2]["time"], FUNDING[-1]["time"] + 2 * HOUR_MS).json()
    assert page[:2] == FUNDING[-2:]
    assert [r["premium"] for r in page[2:]] == [None, None]


# -- meta and metaAndAssetCtxs -------------------------------------------------------------


def test_meta_is_the_recorded_body(client: httpx.Client) -> None:
    resp = info(client, {"type": "meta"})
    assert resp.status_code == 200
    assert resp.text == META_BODY


def test_meta_and_asset_ctxs_pairs_the_meta_with_the_first_28_main_dex_ctxs(
    client: httpx.Client,
) -> None:
    """Guards the pairing: ctx i of the main dex belongs to coin i of the meta universe."""
    resp = info(client, {"type": "metaAndAssetCtxs"})
    assert resp.status_code == 200
    meta, ctxs = resp.json()
    assert meta == json.loads(META_BODY)
    assert ctxs == main_dex_ctxs()[:28]
    names = [asset["name"] for asset in meta["universe"]]
    assert names[:3] == ["BTC", "ETH", "ATOM"]
    # BTC- and ETH-like mark prices at indices 0 and 1.
    assert ctxs[0]["markPx"] == "77562.0"
    assert 1000 < Decimal(ctxs[1]["markPx"]) < 10000
    # Delisted by the capture: no book, so null premium/mid/impact prices.
    delisted = [names[i] for i, ctx in enumerate(ctxs) if ctx["midPx"] is None]
    assert delisted == ["MATIC", "RNDR", "FTM"]
    assert all(ctxs[names.index(n)]["premium"] is None for n in delisted)


# -- errors --------------------------------------------------------------------------------


def test_unknown_type_is_a_400_with_an_error_body(client: httpx.Client) -> None:
    resp = info(client, {"type": "clearinghouseState", "user": "0x0"})
    assert resp.status_code == 400
    assert "clearinghouseState" in resp.json()["error"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{not json", id="not-json"),
        pytest.param(b"[]", id="array"),
        pytest.param(b'{"coin": "BTC"}', id="no-type"),
        pytest.param(b'{"type": "candleSnapshot"}', id="no-req"),
        pytest.param(
            b'{"type": "candleSnapshot", "req": {"coin": "kPEPE", "interval": "1h", "startTime": "1"}}',
            id="string-start-time",
        ),
        pytest.param(
            b'{"type": "candleSnapshot", "req": {"coin": "kPEPE", "interval": "2d", "startTime": 1, "endTime": 2}}',
            id="bad-interval",
        ),
        pytest.param(b'{"type": "fundingHistory", "coin": "BTC"}', id="no-start-time"),
    ],
)
def test_malformed_requests_are_400s(client: httpx.Client, body: bytes) -> None:
    resp = client.post("/info", content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.json()["error"].startswith("replay: ")


def test_wrong_method_and_path(client: httpx.Client) -> None:
    resp = client.get("/info")
    assert resp.status_code == 405
    assert resp.headers["allow"] == "POST"
    assert client.post("/exchange", json={"type": "meta"}).status_code == 404


# -- SYNTHETIC candles ---------------------------------------------------------------------


def test_synthetic_file_format(tmp_path: Path) -> None:
    """Guards the synthetic candles being in Hyperliquid's exact format and consistent."""
    start, end = ms("2024-01-01T00:00"), ms("2024-01-03T00:00")
    path = write_synthetic_candles(tmp_path, "BTC", "1h", start, end, seed=7, start_price="42000")
    assert path.name == f"SYNTHETIC_candleSnapshot_BTC_1h_{start}_{end}.json"
    assert path.name == synthetic_file_name("BTC", "1h", start, end)
    rows = json.loads(path.read_text())
    assert len(rows) == 49
    assert [list(row) for row in rows] == [list(CANDLES[0])] * 49  # recorded key order
    for before, row in zip([None, *rows], rows, strict=False):
        assert [type(row[k]) for k in "tTnsiochlv"] == [int] * 3 + [str] * 7
        assert row["T"] == row["t"] + HOUR_MS - 1
        assert (row["s"], row["i"]) == ("BTC", "1h")
        o, c, h, low = (Decimal(row[k]) for k in "ochl")
        assert 0 < low <= min(o, c) and max(o, c) <= h
        assert "E" not in row["l"] + row["h"] + row["v"]
        if before is not None:
            assert row["t"] == before["t"] + HOUR_MS and row["o"] == before["c"]
    assert rows[0]["t"] == start and rows[0]["o"] == "42000.0"
    # Same seed, same bytes; another seed, other prices.
    again = write_synthetic_candles(
        tmp_path / "a", "BTC", "1h", start, end, seed=7, start_price="42000"
    )
    assert again.read_bytes() == path.read_bytes()
    other = write_synthetic_candles(
        tmp_path / "b", "BTC", "1h", start, end, seed=8, start_price="42000"
    )
    assert json.loads(other.read_text())[5]["c"] != rows[5]["c"]


def test_synthetic_writer_aligns_and_validates(tmp_path: Path) -> None:
    start = ms("2024-01-01T00:00") + 1
    path = write_synthetic_candles(
        tmp_path, "kPEPE", "5m", start, start + 3_600_000, seed=1, start_price="0.0016"
    )
    rows = json.loads(path.read_text())
    assert rows[0]["t"] == start - 1 + INTERVAL_MS["5m"]
    assert len(rows) == 12
    assert all("E" not in row["c"] and Decimal(row["l"]) > 0 for row in rows)
    with pytest.raises(ValueError, match="interval"):
        write_synthetic_candles(tmp_path, "BTC", "1M", 0, 1, seed=1)
    with pytest.raises(ValueError, match="after"):
        write_synthetic_candles(tmp_path, "BTC", "1h", 2, 1, seed=1)


@pytest.fixture
def synthetic_data_dir(tmp_path: Path) -> Path:
    """A Hyperliquid data dir: the real recordings (symlinked) plus a synthetic/ folder."""
    folder = tmp_path / "hyperliquid"
    folder.mkdir()
    for path in HL_DIR.iterdir():
        (folder / path.name).symlink_to(path)
    return folder


def test_synthetic_candles_are_served_with_a_warning_once_per_coin(
    synthetic_data_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Guards synthetic data being served (subfolder and extra dir) and never silently."""
    start = ms("2024-01-01T00:00")
    sub = write_synthetic_candles(
        synthetic_data_dir / "synthetic", "ETH", "1m", start, start + 9 * 60_000, 3
    )
    extra = write_synthetic_candles(tmp_path / "extra", "AVAX", "1h", start, start + 5 * HOUR_MS, 4)
    handler = HyperliquidHandler(synthetic_data_dir, synthetic_dir=tmp_path / "extra")
    with (
        ReplayServer(DATA_DIR, handlers={"hyperliquid": handler}) as server,
        httpx.Client(base_url=server.base_url("hyperliquid")) as client,
        caplog.at_level(logging.WARNING, logger="mkt_platform.replay.hyperliquid"),
    ):
        eth = candles(client, "ETH", "1m", start, start + 9 * 60_000).json()
        candles(client, "ETH", "1m", start, start + 60_000)
        avax = candles(client, "AVAX", "1h", start, start + 5 * HOUR_MS).json()
    assert eth == json.loads(sub.read_text())
    assert avax == json.loads(extra.read_text())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all("SYNTHETIC" in w for w in warnings)
    assert "ETH" in warnings[0] and "AVAX" in warnings[1]


def test_real_recording_wins_over_a_synthetic_file(
    synthetic_data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Guards against invented candles replacing (or mixing with) the real recording."""
    write_synthetic_candles(
        synthetic_data_dir, "kPEPE", "1h", KPEPE_START - 10 * HOUR_MS, KPEPE_END, 5
    )
    handler = HyperliquidHandler(synthetic_data_dir)
    with (
        ReplayServer(DATA_DIR, handlers={"hyperliquid": handler}) as server,
        httpx.Client(base_url=server.base_url("hyperliquid")) as client,
        caplog.at_level(logging.WARNING),
    ):
        resp = candles(client, "kPEPE", "1h", KPEPE_START - 10 * HOUR_MS, KPEPE_END)
    assert resp.text == CANDLE_BODY
    assert not [r for r in caplog.records if "SYNTHETIC" in r.getMessage()]


def test_5000_candle_cap(tmp_path: Path) -> None:
    """Guards the per-request cap: the first 5000 candles from the one containing startTime."""
    start = ms("2024-01-01T00:00")
    end = start + 5999 * 60_000
    write_synthetic_candles(tmp_path, "ETH", "1m", start, end, seed=9)
    handler = HyperliquidHandler(HL_DIR, synthetic_dir=tmp_path)
    with (
        ReplayServer(DATA_DIR, handlers={"hyperliquid": handler}) as server,
        httpx.Client(base_url=server.base_url("hyperliquid")) as client,
    ):
        served = candles(client, "ETH", "1m", start + 30_000, end).json()
    assert len(served) == 5000
    assert served[0]["t"] == start
    assert served[-1]["t"] == start + 4999 * 60_000
