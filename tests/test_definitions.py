"""The Dagster graph as a user sees it: keys, lineage, groups, partitions, policies.

A change to the graph shows up here in review (STYLE.md: asset specs are snapshot-tested).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import dagster as dg
import pytest

from mkt_platform import settings
from mkt_platform.definitions import build_definitions
from mkt_platform.lib.dbt import (
    DBT_PROJECT_DIR,
    WINDOW_ENV,
    dbt_build_args,
    dbt_vars,
    dbt_window_env,
)
from mkt_platform.lib.instruments import load_instruments, symbols_for

GRAPH = {
    # key: (group, parents)
    "binance_klines_1h": ("raw_binance", set()),
    "binance_klines_1m": ("raw_binance", set()),
    "hyperliquid_candles_1h": ("raw_hyperliquid", set()),
    "hyperliquid_candles_1m": ("raw_hyperliquid", set()),
    "hyperliquid_funding_rates": ("raw_hyperliquid", set()),
    "hyperliquid_asset_contexts": ("raw_hyperliquid", set()),
    "binance_order_book": ("raw_binance", set()),
    "binance_ticker_24h": ("raw_binance", set()),
    "binance_recent_trades": ("raw_binance", set()),
    "polygon_spy_aggs_1m": ("raw_polygon", set()),
    "polygon_vix_aggs_1m": ("raw_polygon", set()),
    "polygon_news": ("raw_polygon", set()),
    "equity_news_session_daily": ("marts", {"nyse_sessions", "polygon_news"}),
    "polygon_spy_options_contracts": ("raw_polygon", {"polygon_spy_aggs_1m"}),
    "polygon_spy_options_aggs_1m": ("raw_polygon", {"polygon_spy_options_contracts"}),
    "nyse_sessions": ("calendars", set()),
    # the equity staging model is ephemeral: the mart reads the raw asset directly
    "equity_session_ohlc_daily": (
        "marts",
        {"nyse_sessions", "polygon_spy_aggs_1m", "polygon_vix_aggs_1m"},
    ),
    "equity_option_session_ohlc_daily": (
        "marts",
        {
            "nyse_sessions",
            "polygon_spy_options_contracts",
            "polygon_spy_options_aggs_1m",
            "equity_session_ohlc_daily",
        },
    ),
    "equity_consolidated_1m": (
        "marts",
        {
            "nyse_sessions",
            "polygon_spy_aggs_1m",
            "polygon_vix_aggs_1m",
            "polygon_spy_options_contracts",
            "polygon_spy_options_aggs_1m",
        },
    ),
    "hyperliquid_candles_1m_stream": ("raw_capture", set()),
    "hyperliquid_asset_contexts_1m_stream": ("raw_capture", set()),
    "binance_futures_liquidations_stream": ("raw_capture", set()),
    "deribit_option_trades": ("raw_deribit", set()),
    "deribit_volatility_index": ("raw_deribit", set()),
    "stg_deribit__option_trades": ("staging", {"deribit_option_trades"}),
    # window-baked staging is ephemeral (compiled into its reader, so each run reads its own
    # window): int_candles_1h and these marts read the raw assets directly
    "int_candles_1h": ("intermediate", {"binance_klines_1h", "hyperliquid_candles_1h"}),
    "session_ohlc_daily": ("marts", {"int_candles_1h"}),
    "session_ohlc_weekly": ("marts", {"session_ohlc_daily"}),
    "session_ohlc_monthly": ("marts", {"session_ohlc_daily"}),
    "realized_volatility_daily": ("marts", {"int_candles_1h"}),
    "realized_volatility_rolling": ("marts", {"realized_volatility_daily"}),
    "dvol_daily": ("marts", {"deribit_volatility_index"}),
    "volatility_risk_premium_daily": (
        "marts",
        {"dvol_daily", "realized_volatility_rolling", "option_term_structure_hourly"},
    ),
    "funding_carry_daily": ("marts", {"funding_rates_daily"}),
    "perp_premium_snapshots": ("marts", {"hyperliquid_asset_contexts"}),
    "order_book_depth": ("marts", {"binance_order_book"}),
    # the capture's staging models are ephemeral: the marts read the raw assets directly
    "liquidations_hourly": ("marts", {"binance_futures_liquidations_stream"}),
    "funding_open_interest_1m": ("marts", {"hyperliquid_asset_contexts_1m_stream"}),
    "candles_1m": ("marts", {"hyperliquid_candles_1m_stream", "hyperliquid_candles_1m"}),
    "funding_rates_daily": ("marts", {"hyperliquid_funding_rates"}),
    "option_ohlc_hourly": ("marts", {"stg_deribit__option_trades"}),
    "option_expiry_hourly": ("marts", {"stg_deribit__option_trades"}),
    "option_atm_iv_hourly": ("marts", {"stg_deribit__option_trades"}),
    "option_greeks": ("marts", {"stg_deribit__option_trades"}),
    "option_flow_hourly": ("marts", {"option_greeks"}),
    "option_smile_hourly": ("marts", {"option_greeks"}),
    "option_term_structure_hourly": ("marts", {"option_smile_hourly"}),
}


@pytest.fixture
def graph(monkeypatch):
    monkeypatch.delenv("MKT_SESSION_ANCHOR_HOUR", raising=False)
    monkeypatch.delenv("MKT_PARTITIONS_START", raising=False)
    return build_definitions().resolve_asset_graph()


def test_asset_graph_snapshot(graph):
    """Guards lineage and grouping: raw -> staging -> intermediate -> mart, nothing else."""
    actual = {
        key.to_user_string(): (
            graph.get(key).group_name,
            {p.to_user_string() for p in graph.get(key).parent_keys},
        )
        for key in graph.get_all_asset_keys()
    }
    assert actual == GRAPH


def test_partitions_and_policies(graph):
    """Raw assets: UTC days including today, backfilled a week per run (runs in parallel);
    dbt: sessions from 08:00, single-run backfills, every dbt asset in the one-writer
    warehouse pool."""
    raw = graph.get(dg.AssetKey("binance_klines_1h"))
    assert raw.partitions_def == dg.DailyPartitionsDefinition(
        "2022-01-01", timezone="UTC", end_offset=1
    )
    assert raw.backfill_policy == dg.BackfillPolicy.multi_run(max_partitions_per_run=7)
    for name in ("hyperliquid_candles_1h", "hyperliquid_funding_rates", "deribit_option_trades"):
        assert graph.get(dg.AssetKey(name)).backfill_policy == raw.backfill_policy
    assert raw.pools == set()
    assert raw.description and "GET /api/v3/klines" in raw.description
    for name in ("int_candles_1h", "session_ohlc_daily"):
        node = graph.get(dg.AssetKey(name))
        assert node.partitions_def == dg.DailyPartitionsDefinition(
            "2022-01-01", hour_offset=8, timezone="UTC"
        )
        assert node.backfill_policy == dg.BackfillPolicy.single_run()
        assert node.pools == {"duckdb_warehouse"}
        assert node.description


@pytest.mark.parametrize(
    ("anchor", "session", "raw_days"),
    [
        ("8", "2023-01-05", ["2023-01-05", "2023-01-06"]),
        ("0", "2023-01-05", ["2023-01-05"]),
        ("23", "2023-12-31", ["2023-12-31", "2024-01-01"]),
    ],
)
def test_session_partition_maps_to_the_raw_days_it_covers(monkeypatch, anchor, session, raw_days):
    """Guards the partition mapping: a session from the anchor hour to the next needs both
    UTC days it overlaps (a backfill that missed the second would cut the session short)."""
    monkeypatch.setenv("MKT_SESSION_ANCHOR_HOUR", anchor)
    graph = build_definitions().resolve_asset_graph()
    child, parent = dg.AssetKey("int_candles_1h"), dg.AssetKey("binance_klines_1h")
    child_def, parent_def = graph.get(child).partitions_def, graph.get(parent).partitions_def
    mapped = graph.get_partition_mapping(
        child, parent
    ).get_upstream_mapped_partitions_result_for_partitions(
        child_def.subset_with_partition_keys([session]), child_def, parent_def
    )
    assert sorted(mapped.partitions_subset.get_partition_keys()) == raw_days


def test_dbt_window_env_carries_the_half_open_session_window(monkeypatch):
    """Guards the contract with the incremental models: the settings in --vars (the same
    from run to run, so dbt keeps its saved parse), the window in the environment as ISO UTC
    bounds [min, max), and every other window variable emptied."""
    monkeypatch.setenv("MKT_SESSION_ANCHOR_HOUR", "8")
    monkeypatch.setenv("MKT_WEEKLY_SESSION_WEEKDAY", "mon")
    window = dg.TimeWindow(datetime(2023, 1, 1, 8, tzinfo=UTC), datetime(2023, 1, 3, 8, tzinfo=UTC))
    assert dbt_window_env(window) == {
        "MKT_DBT_SESSION_START_MIN": "2023-01-01T08:00:00+00:00",
        "MKT_DBT_SESSION_START_MAX": "2023-01-03T08:00:00+00:00",
        "MKT_DBT_OPTIONS_HOUR_MIN": "",
        "MKT_DBT_OPTIONS_HOUR_MAX": "",
    }
    assert dbt_window_env(window, "utc_hour")["MKT_DBT_OPTIONS_HOUR_MAX"] == (
        "2023-01-03T08:00:00+00:00"
    )
    assert set(dbt_window_env(None).values()) == {""}
    assert dbt_vars() == {"session_anchor_hour": 8, "session_weekday": 1}
    assert dbt_build_args() == [
        "build",
        "--vars",
        '{"session_anchor_hour": 8, "session_weekday": 1}',
        "--exclude-resource-type",
        "unit_test",
        "--no-write-json",
    ]
    # The macros read exactly these variables: each is named in a call of run_window, which
    # reads it with env_var (macros/run_window.sql).
    macros = "".join(p.read_text() for p in (DBT_PROJECT_DIR / "macros").glob("*.sql"))
    calls = re.findall(r"run_window\(([^)]*)\)", macros)
    named = {n for call in calls for n in re.findall(r"'(MKT_[A-Z_]+)'", call)}
    assert named == {n for names in WINDOW_ENV.values() for n in names}
    assert "env_var(lo_env, '')" in macros and "env_var(hi_env, '')" in macros


def test_dbt_fallback_anchor_hour_equals_the_platform_default():
    """A person running dbt by hand gets the same anchor hour as Dagster's partitions."""
    macros = (DBT_PROJECT_DIR / "macros" / "sessions.sql").read_text()
    (fallback,) = re.findall(r"env_var\('MKT_SESSION_ANCHOR_HOUR', '(\d+)'\)", macros)
    assert int(fallback) == settings.DEFAULT_SESSION_ANCHOR_HOUR


@pytest.mark.parametrize("value", ["FRIDAY", "5", ""])
def test_bad_weekday_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv("MKT_WEEKLY_SESSION_WEEKDAY", value)
    with pytest.raises(settings.SettingError, match="MKT_WEEKLY_SESSION_WEEKDAY"):
        settings.weekly_session_weekday()


@pytest.mark.parametrize("value", ["24", "-1", "8am", ""])
def test_bad_anchor_hour_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv("MKT_SESSION_ANCHOR_HOUR", value)
    with pytest.raises(settings.SettingError, match="MKT_SESSION_ANCHOR_HOUR"):
        settings.session_anchor_hour()


def test_partitions_start_is_configurable(monkeypatch):
    monkeypatch.setenv("MKT_PARTITIONS_START", "2022-06-01")
    graph = build_definitions().resolve_asset_graph()
    raw_def = graph.get(dg.AssetKey("binance_klines_1h")).partitions_def
    assert raw_def.get_first_partition_key() == "2022-06-01"
    monkeypatch.setenv("MKT_PARTITIONS_START", "June 2022")
    with pytest.raises(settings.SettingError, match="MKT_PARTITIONS_START"):
        settings.partitions_start()


def test_default_universe_and_one_line_to_add_an_instrument(tmp_path, monkeypatch):
    """The universe is configuration: the default three symbols, and a new line adds one."""
    assert symbols_for("binance", "spot", "1h") == ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    custom = tmp_path / "instruments.yaml"
    custom.write_text(
        "instruments:\n"
        "  - {venue: binance, instrument: BTCUSDT, base: BTC, quote: USDT, market: spot, intervals: [1h]}\n"
        "  - {venue: binance, instrument: BNBUSDT, base: BNB, quote: USDT, market: spot, intervals: [1h]}\n"
    )
    monkeypatch.setenv("MKT_INSTRUMENTS_FILE", str(custom))
    assert symbols_for("binance", "spot", "1h") == ("BTCUSDT", "BNBUSDT")
    custom.write_text(
        "instruments:\n  - {venue: binance, instrument: X, base: X, quote: Y, market: swap, intervals: [1h]}\n"
    )
    with pytest.raises(ValueError, match=r"line 2: instruments\.0\.market: .*'swap'"):
        load_instruments()


def test_workspace_loads_with_dagster_cli(tmp_path):
    """`dagster dev -w workspace.yaml` from the repository root loads the code location with
    the embedded default instance: it must validate without PostgreSQL or any setting."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "MKT_"))}
    env["MKT_DATA_DIR"] = str(tmp_path)
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-w",
            "workspace.yaml",
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "All code locations passed validation" in done.stderr + done.stdout


@pytest.mark.parametrize("enabled", [True, False], ids=["collector on", "collector off"])
def test_the_build_pauses_the_garbage_collector_and_leaves_it_as_it_was(enabled, monkeypatch):
    """While the defs folder is imported and built, Python's collector is off (a collection
    would walk every object of Dagster and dbt, for nothing to free); after, it is on or off
    as it was, even when the build fails."""
    import gc

    load = dg.load_from_defs_folder
    seen: list[bool] = []

    def loading(**kwargs):
        seen.append(gc.isenabled())
        return load(**kwargs)

    def failing(**kwargs):
        seen.append(gc.isenabled())
        raise RuntimeError("a broken defs module")

    monkeypatch.setattr(dg, "load_from_defs_folder", loading)
    gc.enable() if enabled else gc.disable()
    try:
        assert build_definitions().resolve_asset_graph().get_all_asset_keys()
        after = gc.isenabled()
        monkeypatch.setattr(dg, "load_from_defs_folder", failing)
        with pytest.raises(RuntimeError, match="a broken defs module"):
            build_definitions()
        after_failure = gc.isenabled()
    finally:
        gc.enable()
    assert seen == [False, False]
    assert after is enabled and after_failure is enabled
