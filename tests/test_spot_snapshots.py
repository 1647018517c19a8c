"""Binance spot 24h-ticker and recent-trades snapshots (issue 17, item 3): ``GET
/api/v3/ticker/24hr`` and ``GET /api/v3/trades`` through the replay, the raw assets
``binance_ticker_24h`` and ``binance_recent_trades``, and the one 5-minute run that snapshots
them with the order books.

SYNTHETIC data: no real answer of either endpoint is recorded (SOURCES.md: "Binance
/api/v3/ticker/24hr and /api/v3/trades real responses: none found"). The replay answers with
a synthetic market around the four real order books cryptofeed recorded
(:mod:`mkt_platform.replay.synthetic_binance`), at a moment the test fixes; the best bid and
ask are the recording's, checked here against the capture file itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest

from mkt_platform.defs.binance.datasets import ORDER_BOOK, RECENT_TRADES, TICKER_24H
from mkt_platform.defs.binance.resources import BinanceSpotClient
from mkt_platform.lib import lake
from mkt_platform.replay.binance import SYNTHETIC_HEADER, BinanceHandler
from mkt_platform.replay.server import ReplayServer
from mkt_platform.replay.synthetic_binance import recent_trades, ticker_24h
from tests.conftest import RECORDED_INSTRUMENTS, SHARED_DATA
from tests.test_order_book import SYMBOLS, recorded_books

#: The replay's present for the synthetic answers.
NOW_MS = int(datetime.now(UTC).replace(microsecond=0).timestamp() * 1000)
TICKER_FIELDS = {
    "price_change": "priceChange",
    "price_change_percent": "priceChangePercent",
    "weighted_avg_price": "weightedAvgPrice",
    "prev_close_price": "prevClosePrice",
    "last_price": "lastPrice",
    "last_quantity": "lastQty",
    "bid_price": "bidPrice",
    "bid_quantity": "bidQty",
    "ask_price": "askPrice",
    "ask_quantity": "askQty",
    "open_price": "openPrice",
    "high_price": "highPrice",
    "low_price": "lowPrice",
    "volume": "volume",
    "quote_volume": "quoteVolume",
}


@pytest.fixture
def spot(tmp_path: Path, monkeypatch) -> Iterator[ReplayServer]:
    """A replay of Binance whose synthetic present is NOW_MS, and the lake in ``tmp_path``."""
    monkeypatch.setenv("MKT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MKT_INSTRUMENTS_FILE", str(RECORDED_INSTRUMENTS))
    handler = BinanceHandler(SHARED_DATA / "binance", clock=lambda: NOW_MS)
    with ReplayServer(SHARED_DATA, handlers={"binance": handler}) as server:
        yield server


def snapshot(replay, instance, *datasets) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [d.asset() for d in datasets],
        partition_key=datetime.now(UTC).strftime("%Y-%m-%d"),
        resources={"binance": BinanceSpotClient(base_url=replay.base_url("binance"))},
        instance=instance,
        raise_on_error=False,
    )


def today_rows(dataset: str) -> list[dict]:
    path = lake.raw_partition_path("binance", dataset, datetime.now(UTC).strftime("%Y-%m-%d"))
    return pq.read_table(path).to_pylist()


def test_tickers_and_trades_land_exactly_as_sent(spot, instance) -> None:
    import httpx

    answer = httpx.get(f"{spot.base_url('binance')}/api/v3/trades", params={"symbol": "LRCBTC"})
    assert answer.headers[SYNTHETIC_HEADER].startswith("SYNTHETIC")
    result = snapshot(spot, instance, ORDER_BOOK, TICKER_24H, RECENT_TRADES)
    assert result.success
    books = recorded_books()

    tickers = {row["symbol"]: row for row in today_rows("ticker_24h")}
    assert sorted(tickers) == sorted(SYMBOLS)
    for symbol, row in tickers.items():
        sent = ticker_24h(symbol, books[symbol], NOW_MS)
        assert {k: row[k] for k in TICKER_FIELDS} == {
            k: Decimal(sent[v]) for k, v in TICKER_FIELDS.items()
        }
        assert (row["first_trade_id"], row["last_trade_id"], row["trades"]) == (
            sent["firstId"],
            sent["lastId"],
            sent["count"],
        )
        assert row["close_time"] == datetime.fromtimestamp(NOW_MS / 1000, UTC)
        # the best levels are the real recording's
        assert row["bid_price"] == Decimal(books[symbol]["bids"][0][0])
        assert row["ask_price"] == Decimal(books[symbol]["asks"][0][0])

    trades = today_rows("recent_trades")
    for symbol in SYMBOLS:
        mine = [t for t in trades if t["symbol"] == symbol]
        sent = recent_trades(symbol, books[symbol], NOW_MS, 500)
        assert len(mine) == 500
        assert [t["trade_id"] for t in mine] == [t["id"] for t in sent]
        assert [(t["price"], t["quantity"], t["quote_quantity"]) for t in mine] == [
            (Decimal(t["price"]), Decimal(t["qty"]), Decimal(t["quoteQty"])) for t in sent
        ]
        assert [t["is_buyer_maker"] for t in mine] == [t["isBuyerMaker"] for t in sent]
        # the ticker and the trades of one moment agree: its last trade is the newest one
        assert mine[-1]["trade_id"] == tickers[symbol]["last_trade_id"]
        assert mine[-1]["price"] == tickers[symbol]["last_price"]

    # a second snapshot appends: the day holds two, the overlapping trades in each
    assert snapshot(spot, instance, TICKER_24H, RECENT_TRADES).success
    assert len(today_rows("ticker_24h")) == 2 * len(SYMBOLS)
    assert len(today_rows("recent_trades")) == 2 * 500 * len(SYMBOLS)


def test_the_five_minute_schedule_snapshots_all_three_in_one_run_with_the_1m_klines() -> None:
    from mkt_platform.definitions import build_definitions

    defs = build_definitions()
    schedule = defs.resolve_schedule_def("binance_five_minute_refresh_schedule")
    assert schedule.cron_schedule == "*/5 * * * *"
    job = defs.resolve_job_def(schedule.job_name)
    assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {
        "binance_order_book",
        "binance_ticker_24h",
        "binance_recent_trades",
        "binance_klines_1m",
    }


@pytest.mark.parametrize(
    ("dataset", "lie", "expected"),
    [
        (
            TICKER_24H,
            lambda payload: {**payload, "lastPrice": float(payload["lastPrice"])},
            "GET /api/v3/ticker/24hr symbol=NKNUSDT",
        ),
        (
            TICKER_24H,
            lambda payload: {**payload, "highPrice": payload["lowPrice"], "lastPrice": "1"},
            "ohlc_sane",
        ),
        (
            RECENT_TRADES,
            lambda payload: [*payload[:-1], payload[0]],
            "no_duplicate_keys",
        ),
        (
            RECENT_TRADES,
            lambda payload: [{k: v for k, v in t.items() if k != "isBuyerMaker"} for t in payload],
            "isBuyerMaker",
        ),
        (
            ORDER_BOOK,
            lambda payload: {
                **payload,
                "bids": [[payload["bids"][0][0], "-1.00000000"], *payload["bids"][1:]],
            },
            "non_negative_volumes",
        ),
    ],
    ids=[
        "price as a number",
        "last above high",
        "a trade twice",
        "no buyer-maker flag",
        "a negative quantity in a book",
    ],
)
def test_an_answer_that_lies_fails_the_snapshot_and_writes_nothing(
    spot, instance, dataset, lie, expected
) -> None:
    """A ticker, a trade list or a book that breaks its contract or a blocking check fails
    the run, naming the endpoint and symbol or the check; today's partition is not written.
    (The book is real, cryptofeed's; the lie is the test's.)"""

    def lying(request, payload):
        return lie(payload) if request.query.get("symbol") == ["NKNUSDT"] else payload

    spot.mutate("binance", lying)
    result = snapshot(spot, instance, dataset)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.user_failure_data.description
    assert dataset.name in message and expected in message, message
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert not lake.raw_partition_path("binance", dataset.dataset, today).exists()


def test_order_book_depth_is_refreshed_at_most_every_15_minutes(spot, instance) -> None:
    """A 5-minute snapshot updates the raw order book; automation rebuilds order_book_depth
    over today only once a quarter-hour has begun since it last did (its dbt ``meta``
    ``refresh_cron``), not after every snapshot: snapshots at 10:03 and 10:21 are built at
    10:16 and 10:31, and the ticks between request nothing."""
    from datetime import timedelta

    from mkt_platform.definitions import build_definitions

    defs = build_definitions()
    mart = dg.AssetKey("order_book_depth")
    today = datetime.now(UTC).replace(hour=10, minute=1, second=0, microsecond=0)
    cursor = None

    def tick(minutes_after_ten: int) -> set[str]:
        nonlocal cursor
        result = dg.evaluate_automation_conditions(
            defs=defs,
            instance=instance,
            asset_selection=dg.AssetSelection.assets(mart),
            cursor=cursor,
            evaluation_time=today + timedelta(minutes=minutes_after_ten - 1),
        )
        cursor = result.cursor
        return set(result.get_requested_partitions(mart) or ())

    day = today.strftime("%Y-%m-%d")
    assert tick(1) == set()
    assert snapshot(spot, instance, ORDER_BOOK).success
    assert tick(6) == set()  # the snapshot is new, but no quarter-hour began since 10:01
    assert tick(11) == set()
    assert tick(16) == {day}  # 10:15 passed
    assert tick(17) == set()  # requested: handled
    assert snapshot(spot, instance, ORDER_BOOK).success
    assert tick(21) == set()
    assert tick(26) == set()
    assert tick(31) == {day}  # 10:30 passed
    assert tick(36) == set()  # nothing new since
    assert tick(46) == set()  # 10:45 passed, but no snapshot since the last request


def test_a_snapshot_run_over_several_days_refuses_naming_them(spot, instance) -> None:
    """A backfill may give a snapshot a run over several days (the raw assets' policy, which
    it shares with the pulls of its refresh job): the run fails naming the days and saying
    only today's partition can be taken, alone; nothing is written."""
    from datetime import timedelta

    today = datetime.now(UTC)
    days = [(today - timedelta(days=1)).strftime("%Y-%m-%d"), today.strftime("%Y-%m-%d")]
    result = dg.materialize(
        [ORDER_BOOK.asset()],
        tags={
            "dagster/asset_partition_range_start": days[0],
            "dagster/asset_partition_range_end": days[1],
        },
        resources={"binance": BinanceSpotClient(base_url=spot.base_url("binance"))},
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.error.message
    assert f"partition {days[0]}..{days[1]} (2 days)" in message, message
    assert f"only today's partition ({days[1]} UTC) can be snapshotted, alone" in message
    for day in days:
        assert not lake.raw_partition_path("binance", "order_book", day).exists()
