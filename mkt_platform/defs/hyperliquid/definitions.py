"""Hyperliquid domain: candles, funding rates, asset-context snapshots and their client."""

from __future__ import annotations

import dagster as dg

from mkt_platform import settings
from mkt_platform.defs.hyperliquid.assets import (
    hyperliquid_asset_contexts,
    hyperliquid_candles_1h,
    hyperliquid_funding_rates,
)
from mkt_platform.defs.hyperliquid.resources import HyperliquidClient


def build_asset_contexts_schedule() -> dg.ScheduleDefinition:
    job = dg.define_asset_job(
        "hyperliquid_asset_contexts_snapshot", selection=[hyperliquid_asset_contexts]
    )

    @dg.schedule(
        name="hyperliquid_asset_contexts_schedule",
        job=job,
        cron_schedule="5 * * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            "Every hour at :05, snapshot Hyperliquid's asset contexts (open interest, mark, "
            "oracle and mid price) into today's partition. Hyperliquid keeps no history of "
            "them, so a snapshot not taken is lost: this is the only way they are collected."
        ),
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        moment = context.scheduled_execution_time
        return dg.RunRequest(
            run_key=f"asset_contexts:{moment.isoformat()}",
            partition_key=moment.strftime("%Y-%m-%d"),
        )

    return _schedule


def build_defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[hyperliquid_candles_1h, hyperliquid_funding_rates, hyperliquid_asset_contexts],
        schedules=[build_asset_contexts_schedule()],
        resources={"hyperliquid": HyperliquidClient(base_url=settings.hyperliquid_base_url())},
    )
