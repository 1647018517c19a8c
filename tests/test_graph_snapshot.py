"""A snapshot of the whole asset graph, so that any change to it shows in review.

For every asset: its group, dependencies, owners, kinds, tags, partitions, backfill policy,
pools, automation condition and checks (name and whether it blocks); then the schedules and
sensors by name with their targets. The snapshot is ``tests/snapshots/asset_graph.json``; a
change to the graph fails this test with the difference, and once the change is meant,
``MKT_UPDATE_SNAPSHOTS=1 pytest tests/test_graph_snapshot.py`` writes the new snapshot (commit
it with the change, so the review shows both).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from mkt_platform.definitions import build_definitions

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def _partitions(partitions_def: Any) -> Any:
    if partitions_def is None:
        return None
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        return {
            "cron": partitions_def.cron_schedule,
            "start": partitions_def.start.isoformat(),
            "timezone": partitions_def.timezone,
            "end_offset": partitions_def.end_offset,
        }
    return type(partitions_def).__name__


def _condition(condition: Any) -> Any:
    if condition is None:
        return None
    return condition.get_label() or type(condition).__name__


def graph_snapshot(defs: dg.Definitions) -> dict[str, Any]:
    graph = defs.resolve_asset_graph()
    checks: dict[str, list[str]] = {}
    for key in graph.asset_check_keys:
        spec = graph.get_check_spec(key)
        checks.setdefault(key.asset_key.to_user_string(), []).append(
            f"{key.name}{' (blocking)' if spec.blocking else ''}"
        )
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        policy = node.backfill_policy
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            "owners": sorted(node.owners),
            "kinds": sorted(node.kinds),
            "tags": {k: v for k, v in sorted(node.tags.items()) if not k.startswith("dagster/")},
            "partitions": _partitions(node.partitions_def),
            "backfill_policy": None
            if policy is None
            else f"{policy.policy_type.value}:{policy.max_partitions_per_run}",
            "pools": sorted(node.pools or ()),
            "automation_condition": _condition(node.automation_condition),
            "freshness_policy": None
            if node.freshness_policy is None
            else {
                "fail_seconds": node.freshness_policy.fail_window.to_timedelta().total_seconds(),
                "warn_seconds": node.freshness_policy.warn_window.to_timedelta().total_seconds()
                if node.freshness_policy.warn_window
                else None,
            },
            "checks": sorted(checks.get(key.to_user_string(), [])),
        }
    repo = defs.get_repository_def()
    return {
        "assets": assets,
        "schedules": {
            s.name: {"cron": s.cron_schedule, "job": s.job_name}
            for s in sorted(repo.schedule_defs, key=lambda s: s.name)
        },
        "sensors": sorted(s.name for s in repo.sensor_defs),
        "check_steps": sorted({c.node_def.name for c in repo.asset_checks_defs_by_key.values()}),
    }


@pytest.fixture
def defs(monkeypatch):
    for name in ("MKT_SESSION_ANCHOR_HOUR", "MKT_PARTITIONS_START", "MKT_WEEKLY_SESSION_WEEKDAY"):
        monkeypatch.delenv(name, raising=False)
    return build_definitions()


def test_asset_graph_matches_its_snapshot(defs):
    actual = graph_snapshot(defs)
    text = json.dumps(actual, indent=1, sort_keys=True) + "\n"
    if os.environ.get("MKT_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(text)
    # Every step has a name a person can read (Dagster's default is a hash of the keys).
    assert not [n for n in actual["check_steps"] if re.fullmatch(r"asset_check_[0-9a-f]+", n)]
    expected = json.loads(SNAPSHOT.read_text())
    assert actual == expected, (
        "the asset graph changed; if meant, run MKT_UPDATE_SNAPSHOTS=1 pytest "
        "tests/test_graph_snapshot.py and commit tests/snapshots/asset_graph.json"
    )
