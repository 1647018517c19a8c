"""perp_premium_snapshots against the recorded asset contexts
(shared/data/hyperliquid/ws_allDexsAssetCtxs_snapshot_2026.json, SOURCES.md section 5),
snapshotted today through the replay and built by the UTC-daily dbt step."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import dagster as dg
import duckdb
import pytest

from mkt_platform.defs.hyperliquid.datasets import ASSET_CONTEXTS
from mkt_platform.defs.hyperliquid.resources import HyperliquidClient
from tests.conftest import SHARED_DATA
from tests.test_options_marts import dbt

pytestmark = pytest.mark.slow

#: The 2023 meta's coin order: index i of the main dex's contexts is coin i.
META_INDEX = {"BTC": 0, "ETH": 1, "SOL": 5}


def test_premium_to_the_oracle_is_the_recorded_mark_over_oracle(data_dir, replay, instance):
    client = HyperliquidClient(base_url=replay.base_url("hyperliquid"))
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert dg.materialize(
        [ASSET_CONTEXTS.asset()],
        partition_key=today,
        resources={"hyperliquid": client},
        instance=instance,
    ).success
    dbt(data_dir, "build", "--select", "+perp_premium_snapshots")
    recorded = json.loads(
        (SHARED_DATA / "hyperliquid" / "ws_allDexsAssetCtxs_snapshot_2026.json").read_text(),
        parse_float=Decimal,
    )
    main_dex = dict(recorded["data"]["ctxs"])[""]
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute("select * from marts.perp_premium_snapshots")
        names = [c[0] for c in cursor.description]
        rows = {
            r[names.index("instrument")]: dict(zip(names, r, strict=True))
            for r in cursor.fetchall()
        }
    checked = 0
    for coin, index in META_INDEX.items():
        if coin not in rows:
            continue
        ctx, row = main_dex[index], rows[coin]
        mark, oracle = Decimal(ctx["markPx"]), Decimal(ctx["oraclePx"])
        assert row["mark_premium"] == pytest.approx(float(mark / oracle - 1), rel=1e-12, abs=1e-15)
        if ctx["midPx"] is not None:
            mid = Decimal(ctx["midPx"])
            assert row["mid_premium"] == pytest.approx(
                float(mid / oracle - 1), rel=1e-12, abs=1e-15
            )
        assert row["premium"] == float(ctx["premium"])
        assert row["funding_rate_annualized"] == pytest.approx(float(ctx["funding"]) * 8760)
        assert row["open_interest_usd"] == pytest.approx(
            float(Decimal(ctx["openInterest"]) * oracle), rel=1e-12
        )
        checked += 1
    assert checked >= 2
    # a perp trades within a few percent of its oracle
    assert all(abs(r["mark_premium"]) < 0.05 for r in rows.values())
