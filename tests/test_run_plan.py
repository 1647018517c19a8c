"""How the CLI's plan (:func:`mkt_platform.lib.materialize.run_plan`) goes on after a step
fails: on toy assets, so that each failure is exactly the one wanted, on a real instance."""

from __future__ import annotations

import dagster as dg

from mkt_platform.lib.materialize import RangeStep, run_plan

DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01")
KEYS = ("2024-01-01", "2024-01-02")


@dg.multi_asset(
    specs=[dg.AssetSpec("written_then_refused")], partitions_def=DAYS, name="refusing_step"
)
def written_then_refused():
    """Materialized, then the step fails: what a dbt build does when a data test fails after
    its model was written (dagster-dbt yields the model's materialization, then raises on
    dbt's exit code)."""
    yield dg.MaterializeResult(asset_key="written_then_refused")
    raise dg.Failure("a data test failed: 1 row outside its range")


@dg.asset(partitions_def=DAYS, deps=[written_then_refused])
def reads_it() -> None:
    raise AssertionError("must not run on what failed its check")


@dg.asset(partitions_def=DAYS)
def unrelated() -> None:
    return None


def test_a_step_that_fails_after_writing_its_assets_holds_back_what_reads_them(instance):
    """The first step's run fails though its asset was materialized: the result says it
    failed and why, and the next step skips the asset downstream of it and still runs the one
    that is not (what was written may be what the test refused)."""
    defs = dg.Definitions(assets=[written_then_refused, reads_it, unrelated])
    steps = [
        RangeStep("refused", dg.AssetSelection.assets(written_then_refused), KEYS),
        RangeStep("downstream", dg.AssetSelection.assets(reads_it, unrelated), KEYS),
    ]
    first, second = run_plan(defs, steps, instance, progress=lambda _: None)
    assert not first.success
    assert first.failed == {"refusing_step": "a data test failed: 1 row outside its range"}
    assert second.skipped == ("reads_it",)
    assert not second.success  # it left something out
    done = instance.get_materialized_partitions(dg.AssetKey("unrelated"))
    assert done == set(KEYS)
    assert instance.get_materialized_partitions(dg.AssetKey("reads_it")) == set()
