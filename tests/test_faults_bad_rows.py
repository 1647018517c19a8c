"""Bad rows never reach the lake that dbt reads (issue 12, fault 6).

Each kind of bad row found by probing (high below low, a negative volume, an unaligned open
time, a price of 0, an implied volatility of 10000 %) arrives intact, passes the contract,
and fails a blocking data-quality check. It used to be written and materialized first, and
blocked only afterwards. Now the re-pull is refused before anything is written: the partition
keeps its previous file byte for byte, the rows are quarantined, and the failure names the
asset, partition, check and the offending row. The recordings used: Binance BTCUSDT 1h of
2023-01-10 (SOURCES.md section 1) and Deribit's BTC option trades of 2022-01-01 (section 7).
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pyarrow.parquet as pq
import pytest

from mkt_platform.definitions import build_definitions
from mkt_platform.testing import mutations
from tests.test_monitoring import ms, pull

DAY = "2023-01-10"
OPENED = ms(datetime(2023, 1, 10, 5, tzinfo=UTC))
BTC = mutations.matching(symbol="BTCUSDT")
AT_5 = {"match": lambda r: r[0] == OPENED, "when": BTC}


@pytest.fixture
def mutated(replay):
    yield replay
    replay.clear_mutations()


@pytest.mark.parametrize(
    ("mutation", "check", "says"),
    [
        (mutations.set_field(3, "99999999.00000000", **AT_5), "ohlc_sane", "low 99999999 > high"),
        (mutations.set_field(5, "-1.00000000", **AT_5), "non_negative_volumes", "volume -1"),
        (mutations.set_field(0, OPENED + 1, **AT_5), "times_monotonic_and_aligned", "05:00:00.001"),
        (mutations.set_field(4, "0.00000000", **AT_5), "ohlc_sane", "close 0 <= 0"),
    ],
    ids=["high-below-low", "negative-volume", "unaligned-time", "zero-price"],
)
def test_a_bad_kline_is_refused_before_the_lake(data_dir, instance, mutated, mutation, check, says):
    defs = build_definitions()
    key = dg.AssetKey("binance_klines_1h")
    assert pull(defs, instance, key, DAY).success
    path = data_dir / f"lake/raw/binance/klines_1h/date={DAY}/part.parquet"
    before = path.read_bytes()

    mutated.mutate("binance", mutation)
    result = pull(defs, instance, key, DAY)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    text = failure.step_failure_data.user_failure_data.description
    assert text.startswith("binance_klines_1h: 1 partition(s) failed blocking data-quality")
    assert f"{DAY} {check}: 1 row(s) at fault, first: BTCUSDT 2023-01-10T05:00" in text
    assert says in text, text
    assert path.read_bytes() == before, "the lake keeps the previous file"
    assert not result.get_asset_materialization_events()
    (kept,) = (data_dir / f"lake/quarantine/rejected/binance_klines_1h/date={DAY}").glob(
        "*.parquet"
    )
    assert pq.read_table(kept).num_rows == 72
    # Nothing is left half-written beside the partition.
    assert [p.name for p in path.parent.iterdir()] == ["part.parquet"]


def test_an_option_trade_with_iv_10000_is_refused_before_the_lake(data_dir, instance, mutated):
    defs = build_definitions()
    mutated.mutate(
        "deribit_history",
        mutations.set_field("iv", 10000, match=lambda t: t["trade_id"] == "197400889"),
    )
    result = pull(defs, instance, dg.AssetKey("deribit_option_trades"), "2022-01-01")
    assert not result.success
    (failure,) = result.get_step_failure_events()
    text = failure.step_failure_data.user_failure_data.description
    assert "deribit_option_trades: 1 partition(s) failed blocking data-quality" in text
    assert "2022-01-01 option_trades_sane: 1 row(s) at fault" in text and "197400889" in text
    folder = data_dir / "lake/raw/deribit/option_trades/date=2022-01-01"
    assert not folder.exists() or not list(folder.iterdir()), "no file, no temp file"
    (kept,) = (data_dir / "lake/quarantine/rejected/deribit_option_trades/date=2022-01-01").glob(
        "*.parquet"
    )
    assert pq.read_table(kept).num_rows == 1350


@pytest.mark.slow
def test_one_venues_bad_row_stops_only_its_own_marts(data_dir, instance, mutated):
    """The main job for 2022-01-01 with one Deribit trade at iv 10000: the option trades
    fail (naming the trade), Binance and Hyperliquid are pulled and their session and funding
    marts built; only the options marts, downstream of the failed asset, are skipped."""
    from datetime import date

    from tests.conftest import materialize_days

    mutated.mutate(
        "deribit_history",
        mutations.set_field("iv", 10000, match=lambda t: t["trade_id"] == "197400889"),
    )
    results = materialize_days(date(2022, 1, 1), date(2022, 1, 1), instance)
    by_label = {r.step.label: r for r in results}
    raw = by_label["raw pulls"]
    assert set(raw.failed) == {"deribit_option_trades"}
    assert "option_trades_sane" in raw.failed["deribit_option_trades"]
    assert "197400889" in raw.failed["deribit_option_trades"]
    assert by_label["dbt sessions"].success
    utc = by_label["dbt options and funding"]
    assert utc.run_id and not utc.failed, "the funding mart was built"
    assert "option_ohlc_hourly" in utc.skipped
    assert not any("funding" in name for name in utc.skipped)
    materialized = {
        k.to_user_string()
        for k in instance.get_asset_keys()
        if instance.get_latest_materialization_event(k) is not None
    }
    assert {"binance_klines_1h", "session_ohlc_daily", "funding_rates_daily"} <= materialized
    assert "option_ohlc_hourly" not in materialized
