"""Hyperliquid bad input through the raw assets: an error body fails the run with nothing
written, a 429 is waited out, a malformed candle names its field."""

from __future__ import annotations

import dagster as dg
import pyarrow.parquet as pq

from mkt_platform.defs.hyperliquid.datasets import CANDLES_1H
from mkt_platform.defs.hyperliquid.resources import HyperliquidClient
from mkt_platform.lib import lake
from mkt_platform.replay import Response

DAY = "2023-05-22"


def pull(replay, instance):
    return dg.materialize(
        [CANDLES_1H.asset()],
        partition_key=DAY,
        resources={
            "hyperliquid": HyperliquidClient(
                base_url=replay.base_url("hyperliquid"),
                backoff_initial_seconds=0.01,
                backoff_max_seconds=0.02,
            )
        },
        instance=instance,
        raise_on_error=False,
    )


def failure_text(result) -> str:
    (event,) = result.get_step_failure_events()
    return event.step_failure_data.error.to_string()


def test_error_body_fails_with_nothing_written(data_dir, replay, instance):
    replay.inject(
        "hyperliquid",
        [Response(422, {"Content-Type": "text/plain"}, b"Failed to deserialize the JSON body")],
    )
    result = pull(replay, instance)
    assert not result.success
    text = failure_text(result)
    assert "422" in text and "Failed to deserialize" in text and "candleSnapshot" in text
    assert not lake.raw_partition_path("hyperliquid", "candles_1h", DAY).parent.exists()


def test_rate_limit_is_waited_out(data_dir, replay, instance):
    replay.inject(
        "hyperliquid", [Response.json({"error": "rate limited"}, 429, {"Retry-After": "0"})]
    )
    assert pull(replay, instance).success
    table = pq.read_table(lake.raw_partition_path("hyperliquid", "candles_1h", DAY))
    assert table.num_rows == 20  # kPEPE 00:00..19:00 of the recording


def test_malformed_candle_names_the_field(data_dir, replay, instance):
    candle = {
        "t": 1684713600000,
        "T": 1684717199999,
        "s": "kPEPE",
        "i": "1h",
        "o": 0.0015,  # a JSON number where Hyperliquid sends a decimal string
        "c": "0.0015",
        "h": "0.0016",
        "l": "0.0014",
        "v": "100",
        "n": 3,
    }
    replay.inject("hyperliquid", [Response.json([candle])])
    result = pull(replay, instance)
    assert not result.success
    text = failure_text(result)
    assert "'o'" in text or "field o" in text or '"o"' in text, text
    assert not lake.raw_partition_path("hyperliquid", "candles_1h", DAY).parent.exists()
