"""Binance spot order-book snapshots (issue 17, item 3): ``GET /api/v3/depth`` through the
replay, the raw asset ``binance_order_book`` and the mart ``order_book_depth``.

Data: cryptofeed's capture of four real Binance order books, NKNUSDT, BLZETH, LRCBTC and
RUNEEUR, 1000 levels a side, 2021-10-12 ~00:28 UTC
(``../shared/data/binance/cryptofeed_capture_api-v3-depth_limit1000_4symbols_2021-10-12.txt``,
SOURCES.md section 3), served by the replay as the present. The expected figures are computed
here from that file with Python's ``Decimal``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import dagster as dg
import duckdb
import pytest

from mkt_platform.defs.binance.contract import order_book_table
from mkt_platform.defs.binance.datasets import ORDER_BOOK
from mkt_platform.defs.binance.resources import BinanceSpotClient
from mkt_platform.lib import lake
from mkt_platform.lib.contracts import ContractViolation, MalformedResponse
from tests.conftest import SHARED_DATA
from tests.test_options_marts import dbt

CAPTURE = (
    SHARED_DATA / "binance" / "cryptofeed_capture_api-v3-depth_limit1000_4symbols_2021-10-12.txt"
)
SYMBOLS = ("NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR")
BANDS = {"10bps": Decimal("0.001"), "50bps": Decimal("0.005"), "100bps": Decimal("0.01")}


def snapshot(replay, instance, partition_key: str | None = None) -> dg.ExecuteInProcessResult:
    """One run of ``binance_order_book`` against the replay (today's partition by default);
    a failed run is returned, not raised."""
    return dg.materialize(
        [ORDER_BOOK.asset()],
        partition_key=partition_key or datetime.now(UTC).strftime("%Y-%m-%d"),
        resources={"binance": BinanceSpotClient(base_url=replay.base_url("binance"))},
        instance=instance,
        raise_on_error=False,
    )


def recorded_books() -> dict[str, dict]:
    """The capture's books by symbol, prices and quantities as ``Decimal``."""
    books = {}
    for line in CAPTURE.read_text().splitlines():
        if line.strip():
            url, _, rest = line.partition(" -> ")
            books[url.split("symbol=")[1].split("&")[0]] = json.loads(rest.partition(": ")[2])
    return books


def expected_depth(book: dict, levels: int) -> dict:
    """Spread and depth of the first ``levels`` levels a side, by the documented rule."""
    bids = [(Decimal(p), Decimal(q)) for p, q in book["bids"][:levels]]
    asks = [(Decimal(p), Decimal(q)) for p, q in book["asks"][:levels]]
    mid = (bids[0][0] + asks[0][0]) / 2
    row = {"best_bid": bids[0][0], "best_ask": asks[0][0], "mid_price": mid}
    row["spread"] = asks[0][0] - bids[0][0]
    for name, band in BANDS.items():
        near_bids = [(p, q) for p, q in bids if p >= mid * (1 - band)]
        near_asks = [(p, q) for p, q in asks if p <= mid * (1 + band)]
        row[f"bid_depth_{name}"] = sum((q for _, q in near_bids), Decimal(0))
        row[f"ask_depth_{name}"] = sum((q for _, q in near_asks), Decimal(0))
        row[f"bid_depth_{name}_quote"] = sum((p * q for p, q in near_bids), Decimal(0))
        row[f"ask_depth_{name}_quote"] = sum((p * q for p, q in near_asks), Decimal(0))
    return row


@pytest.mark.slow
def test_snapshots_land_as_recorded_and_the_depth_mart_equals_the_book(
    data_dir, replay, instance, monkeypatch
):
    monkeypatch.setenv("MKT_BINANCE_ORDER_BOOK_LEVELS", "500")
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    for _ in range(2):  # two snapshots of today: each run appends one
        assert snapshot(replay, instance, today).success
    books = recorded_books()
    assert set(SYMBOLS) <= set(books)

    # The lake: every level of every book, exactly as recorded, 500 a side, twice.
    day = lake.read_table(lake.raw_partition_path("binance", "order_book", today))
    assert len(set(day["snapshot_time"].to_pylist())) == 2
    first_time = min(day["snapshot_time"].to_pylist())
    first = [r for r in day.to_pylist() if r["snapshot_time"] == first_time]
    for symbol in SYMBOLS:
        rows = [r for r in first if r["symbol"] == symbol]
        for side, key in (("bid", "bids"), ("ask", "asks")):
            levels = sorted((r for r in rows if r["side"] == side), key=lambda r: r["level"])
            assert [(r["price"], r["quantity"]) for r in levels] == [
                (Decimal(p), Decimal(q)) for p, q in books[symbol][key][:500]
            ]
            assert {r["last_update_id"] for r in levels} == {books[symbol]["lastUpdateId"]}

    dbt(data_dir, "build", "--select", "+order_book_depth")
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute("select * from marts.order_book_depth order by all")
        names = [c[0] for c in cursor.description]
        marts = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    assert len(marts) == 2 * len(SYMBOLS)
    for row in marts:
        expected = expected_depth(books[row["instrument"]], 500)
        for name, value in expected.items():
            assert row[name] == value, (row["instrument"], name)
        assert row["spread_bps"] == pytest.approx(
            float(expected["spread"] / expected["mid_price"] * 10000), rel=1e-12
        )
        assert (row["bid_levels"], row["ask_levels"]) == (
            min(500, len(books[row["instrument"]]["bids"])),
            min(500, len(books[row["instrument"]]["asks"])),
        )
    # the bands nest: more depth within 1 % than within 0.5 %, and within 0.1 %
    for row in marts:
        for side in ("bid", "ask"):
            assert (
                row[f"{side}_depth_10bps"]
                <= row[f"{side}_depth_50bps"]
                <= row[f"{side}_depth_100bps"]
            )
    # and something rests within 1 % of the mid in every recorded book
    assert all(r["bid_depth_100bps"] > 0 and r["ask_depth_100bps"] > 0 for r in marts)


def test_a_past_day_is_refused_and_nothing_is_written(data_dir, replay, instance):
    result = snapshot(replay, instance, "2024-04-01")
    assert not result.success
    assert not lake.raw_partition_path("binance", "order_book", "2024-04-01").exists()


@pytest.mark.parametrize(
    ("mutate", "field", "error"),
    [
        (lambda b: b.pop("lastUpdateId"), "lastUpdateId", ContractViolation),
        # one numeric string: either field may be the one missing, and both are named
        (
            lambda b: b["bids"].__setitem__(0, [b["bids"][0][0]]),
            "price|quantity",
            ContractViolation,
        ),
        (lambda b: b["asks"].__setitem__(0, [1.5, "2"]), "price", ContractViolation),
        (lambda b: b["bids"].reverse(), "bids[1]", MalformedResponse),
        (lambda b: b["asks"].__setitem__(0, b["bids"][0]), "bids[0]", MalformedResponse),
    ],
    ids=[
        "no update id",
        "level without quantity",
        "price as a number",
        "bids ascending",
        "crossed book",
    ],
)
def test_a_book_that_breaks_its_contract_is_refused_naming_the_field(mutate, field, error):
    book = recorded_books()["NKNUSDT"]
    book = {
        "lastUpdateId": book["lastUpdateId"],
        "bids": book["bids"][:5],
        "asks": book["asks"][:5],
    }
    order_book_table(book, "NKNUSDT", 0, "test")  # the recorded book itself passes
    mutate(book)
    with pytest.raises(error) as raised:
        order_book_table(book, "NKNUSDT", 0, "GET /api/v3/depth symbol=NKNUSDT")
    assert raised.value.field == field and "NKNUSDT" in str(raised.value)


def test_a_crossed_book_from_the_exchange_fails_the_run_quarantined_and_writes_nothing(
    data_dir, replay, instance
):
    """The replay answers a crossed book (its best ask moved below the best bid): the run
    fails naming the asset, the partition and the field, the body is in the quarantine, and
    today's partition is not written."""

    def crossed(request, payload):
        payload["asks"][0] = [payload["bids"][1][0], payload["asks"][0][1]]
        return payload

    replay.mutate("binance", crossed)
    try:
        result = snapshot(replay, instance)
    finally:
        replay.clear_mutations("binance")
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert "binance_order_book" in message and "bids[0]" in message, message
    quarantined = list((data_dir / "lake" / "quarantine" / "binance_order_book").glob("*.json"))
    assert any(not p.name.endswith(".error.json") for p in quarantined)
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert not lake.raw_partition_path("binance", "order_book", today).exists()


@pytest.mark.parametrize("value", ["0", "5001", "deep"])
def test_a_levels_setting_that_lies_fails_the_snapshot_by_name(
    data_dir, replay, instance, monkeypatch, value
):
    monkeypatch.setenv("MKT_BINANCE_ORDER_BOOK_LEVELS", value)
    result = snapshot(replay, instance)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "MKT_BINANCE_ORDER_BOOK_LEVELS must be a whole number in 1..5000" in str(
        failure.step_failure_data.error
    )


def test_order_book_on_anything_but_binance_spot_is_refused_by_line(tmp_path):
    from mkt_platform.lib.instruments import InstrumentsFileError, load_instruments

    path = tmp_path / "instruments.yaml"
    path.write_text(
        "instruments:\n"
        "  - {venue: binance, instrument: BTCUSDT, base: BTC, quote: USDT, market: spot,"
        " order_book: true}\n"
        "  - {venue: hyperliquid, instrument: BTC, base: BTC, quote: USDC, market: perp,"
        " order_book: true}\n"
    )
    with pytest.raises(InstrumentsFileError) as refused:
        load_instruments(path)
    message = str(refused.value)
    assert f"{path}, line 3" in message and "order_book" in message
    assert "Binance spot only" in message
