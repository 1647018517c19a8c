"""The raw asset ``deribit_option_trades`` through Dagster, against the replayed recording of
2022-01-01 (QuantLet CSV, deduplicated by the replay) and injected faults."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import dagster as dg
import pyarrow.parquet as pq

from mkt_platform.defs.deribit.datasets import OPTION_TRADES
from mkt_platform.defs.deribit.resources import DeribitClient
from mkt_platform.lib import lake
from mkt_platform.replay import Response
from tests.conftest import SHARED_DATA

DAY = "2022-01-01"
CSV = SHARED_DATA / "deribit" / "quantlet_trades_BTC_options_2022-01-01_00-10UTC.csv"


def client(replay) -> DeribitClient:
    return DeribitClient(
        base_url=replay.base_url("deribit"),
        history_base_url=replay.base_url("deribit_history"),
        backoff_initial_seconds=0.01,
        backoff_max_seconds=0.02,
    )


def pull(replay, instance, partition_key=DAY):
    return dg.materialize(
        [OPTION_TRADES.asset()],
        partition_key=partition_key,
        resources={"deribit": client(replay)},
        instance=instance,
        raise_on_error=False,
    )


def metadata(instance, partition_key=DAY) -> dict:
    (record,) = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("deribit_option_trades"), asset_partitions=[partition_key]
        ),
        limit=1,
    ).records
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def csv_trades() -> dict[str, dict]:
    with CSV.open(newline="") as handle:
        return {row["trade_id"]: row for row in csv.DictReader(handle)}


def page(trades: list[dict], has_more: bool = False) -> Response:
    return Response.json(
        {"jsonrpc": "2.0", "result": {"trades": trades, "has_more": has_more}, "testnet": False}
    )


def trade(trade_id: str, name: str, ms: int, **overrides) -> dict:
    return {
        "trade_seq": 1,
        "trade_id": trade_id,
        "timestamp": ms,
        "tick_direction": 0,
        "price": 0.01,
        "iv": 70.0,
        "instrument_name": name,
        "index_price": 46000.0,
        "direction": "buy",
        "amount": 1.0,
        **overrides,
    }


def test_recorded_day_lands_deduplicated_with_parsed_names(data_dir, replay, instance):
    """The 3719-line CSV holds 1350 unique trades: the partition must hold exactly those, with
    the CSV's values, names parsed into expiry/strike/type, no mark price (not recorded), and
    come from the history API (the day is years old)."""
    before = replay.request_count("deribit_history"), replay.request_count("deribit")
    assert pull(replay, instance).success
    assert replay.request_count("deribit") == before[1]
    assert replay.request_count("deribit_history") > before[0]
    table = pq.read_table(lake.raw_partition_path("deribit", "option_trades", DAY))
    expected = csv_trades()
    rows = table.to_pylist()
    assert len(rows) == len(expected) == 1350
    assert [r["timestamp"] for r in rows] == sorted(r["timestamp"] for r in rows)
    for row in rows:
        source = expected[row["trade_id"]]
        assert row["price"] == Decimal(source["p"]), row["trade_id"]
        assert row["amount"] == Decimal(source["q"])
        assert row["index_price"] == Decimal(source["index_price"])
        assert row["iv"] == float(source["iv"])
        assert row["trade_seq"] == int(source["trade_seq"])
        assert row["timestamp"] == datetime.fromtimestamp(int(source["t"]) / 1000, UTC)
        assert row["mark_price"] is None
        _, expiry, strike, kind = source["instrument_name"].split("-")
        assert row["strike"] == Decimal(strike) and row["option_type"] == kind
        assert row["expiry"].strftime("%-d%b%y").upper() == expiry and row["expiry"].hour == 8
    meta = metadata(instance)
    assert meta["trades"] == 1350 and meta["rejected_trades"] == 0 and meta["api"] == "history"
    assert meta["instruments"] == len({r["instrument_name"] for r in expected.values()})
    assert meta["content_hash"] == lake.content_hash(table)


def test_unparseable_instrument_is_counted_not_fatal(data_dir, replay, instance):
    """A trade of a name that is not an option is left out and reported; the rest is kept."""
    start = int(datetime(2022, 1, 2, tzinfo=UTC).timestamp() * 1000)
    replay.inject(
        "deribit_history",
        [
            page(
                [
                    trade("900000001", "BTC-7JAN22-40000-P", start + 1000),
                    trade("900000002", "BTC-PERPETUAL", start + 2000),
                    trade("900000003", "BTC-7JAN22-50000-C", start + 3000),
                ]
            )
        ],
    )
    assert pull(replay, instance, "2022-01-02").success
    table = pq.read_table(lake.raw_partition_path("deribit", "option_trades", "2022-01-02"))
    assert table["trade_id"].to_pylist() == ["900000001", "900000003"]
    meta = metadata(instance, "2022-01-02")
    assert meta["rejected_trades"] == 1
    assert list(meta["rejected_instruments"]) == ["BTC-PERPETUAL"]


def test_malformed_trade_fails_and_leaves_the_previous_file(data_dir, replay, instance):
    """A page with a price sent as a string fails the run naming the field; the partition
    written before is untouched and no temporary file is left."""
    assert pull(replay, instance).success
    path = lake.raw_partition_path("deribit", "option_trades", DAY)
    previous = path.read_bytes()
    start = int(datetime(2022, 1, 1, tzinfo=UTC).timestamp() * 1000)
    good = [trade(str(800000000 + i), "BTC-7JAN22-40000-P", start + i) for i in range(3)]
    replay.inject(
        "deribit_history",
        [
            page(good, has_more=True),
            page([trade("800000009", "BTC-7JAN22-40000-P", start + 10, price="0.01")]),
        ],
    )
    result = pull(replay, instance)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    text = failure.step_failure_data.error.to_string()
    assert "price" in text and "deribit_option_trades" in text
    assert path.read_bytes() == previous
    assert [p.name for p in path.parent.iterdir()] == ["part.parquet"]


def test_rate_limit_is_retried(data_dir, replay, instance):
    """A 429 with Retry-After is waited out and the day still lands complete."""
    replay.inject(
        "deribit_history",
        [Response.json({"error": "too many requests"}, 429, {"Retry-After": "0"})],
    )
    assert pull(replay, instance).success
    assert metadata(instance)["trades"] == 1350


def test_day_not_started_is_an_empty_partition_with_a_note(data_dir, replay, instance):
    """Tomorrow does not exist as a partition, but today's 400 (Deribit refuses a range in the
    future) must give an empty file and a note, not a failure."""
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    replay.inject(
        "deribit",
        [
            Response.json(
                {
                    "jsonrpc": "2.0",
                    "error": {"code": -32602, "message": "Invalid params"},
                    "testnet": False,
                },
                400,
            )
        ],
    )
    assert pull(replay, instance, today).success
    meta = metadata(instance, today)
    assert meta["trades"] == 0 and "no trades yet" in meta["note"]
    table = pq.read_table(lake.raw_partition_path("deribit", "option_trades", today))
    assert table.num_rows == 0 and "strike" in table.column_names
    assert json.dumps(meta["added_fields"]) == "[]"
    assert timedelta(0) <= datetime.now(UTC) - datetime.fromisoformat(today).replace(tzinfo=UTC)
