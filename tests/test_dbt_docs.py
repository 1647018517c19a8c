"""dbt docs: every source, model and column is described; `dbt docs generate` over a built
warehouse gives a catalog with every mart and its columns; the `docs` service's command
serves them; each dbt asset links to its page.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, date, datetime

import dagster as dg
import httpx
import pytest

from mkt_platform.definitions import build_definitions
from mkt_platform.defs.hyperliquid.datasets import ASSET_CONTEXTS
from mkt_platform.defs.hyperliquid.resources import HyperliquidClient
from mkt_platform.lib.dbt import dbt_executable, dbt_project, dbt_vars_json, prime_saved_parse
from mkt_platform.lib.materialize import plan, run_plan
from mkt_platform.warehouse import connect
from tests.conftest import REPO
from tests.test_deployment import BIN, COMMANDS, DOCS_PORT, free_port, wait_for


def manifest() -> dict:
    return json.loads(dbt_project().manifest_path.read_text())


def test_every_source_model_and_column_is_described():
    nodes = manifest()
    documented = [
        n
        for n in [*nodes["nodes"].values(), *nodes["sources"].values()]
        if n["resource_type"] in ("model", "source")
    ]
    assert len([n for n in documented if n["resource_type"] == "model"]) >= 13
    missing = [n["unique_id"] for n in documented if not n["description"].strip()]
    missing += [
        f"{n['unique_id']}.{c}"
        for n in documented
        for c, column in n["columns"].items()
        if not column["description"].strip()
    ]
    assert missing == []


def test_each_dbt_asset_links_to_its_docs_page(monkeypatch):
    from mkt_platform.definitions import build_definitions

    monkeypatch.setenv("MKT_DBT_DOCS_URL", "https://docs.example.org/dbt/")
    graph = build_definitions().resolve_asset_graph()
    models = [
        n
        for n in manifest()["nodes"].values()
        if n["resource_type"] == "model" and n["config"]["materialized"] != "ephemeral"
    ]  # an ephemeral model is no asset (it is compiled into its readers)
    for model in models:
        link = graph.get(dg.AssetKey(model["name"])).metadata["dbt_docs"]
        assert link.url == f"https://docs.example.org/dbt/#!/model/{model['unique_id']}"


@pytest.mark.slow
def test_docs_generate_lists_every_mart_with_its_columns_and_is_served(
    data_dir, replay, instance, tmp_path, monkeypatch
):
    """The raw pulls of one day of every venue (2022-01-01, the Deribit day) and a Hyperliquid
    snapshot, then a full `dbt build` of every model (so the weekly and monthly marts exist
    too; the plan's own dbt steps are left out, this build makes the same tables), then `dbt
    docs generate`, all on the default warehouse, a DuckLake: the catalog holds every mart
    with exactly the warehouse's columns, each of them described in the manifest. The docs
    service's command serves the site and the catalog."""
    monkeypatch.setenv("MKT_WAREHOUSE", "ducklake")
    defs = build_definitions()
    steps = plan(defs, date(2022, 1, 1), date(2022, 1, 1))
    (pulled,) = run_plan(
        defs, [s for s in steps if s.label == "raw pulls"], instance, progress=lambda _: None
    )
    assert pulled.success, pulled.failed
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert dg.materialize(
        [ASSET_CONTEXTS.asset()],
        partition_key=today,
        resources={"hyperliquid": HyperliquidClient(base_url=replay.base_url("hyperliquid"))},
        instance=instance,
    ).success

    # A fresh target, primed with the project's saved parse as a dbt asset's run target is,
    # and `make docs`'s --vars for both commands: neither parses the project in full.
    target = tmp_path / "dbt_target"
    target.mkdir()
    prime_saved_parse(target)
    env = {
        **os.environ,
        "DBT_TARGET_PATH": str(target),
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }
    project = ["--project-dir", "dbt_project", "--profiles-dir", "dbt_project"]
    dbt = dbt_executable()
    # the seed (the NYSE calendar the equity marts read) and every model, in one process
    build = ["build", "--select", "resource_type:seed resource_type:model"]
    vars_ = ["--vars", dbt_vars_json()]
    for command in ([*build, *vars_], ["docs", "generate", *vars_]):
        done = subprocess.run(
            [dbt, *command, *project], cwd=REPO, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout[-3000:]

    catalog = json.loads((target / "catalog.json").read_text())
    generated = json.loads((target / "manifest.json").read_text())
    marts = [
        n
        for n in generated["nodes"].values()
        if n["resource_type"] == "model" and n["fqn"][1] == "marts"
    ]
    names = {n["name"] for n in marts}
    assert {"session_ohlc_daily", "session_ohlc_weekly", "session_ohlc_monthly"} <= names
    assert {"option_ohlc_hourly", "funding_rates_daily"} <= names
    with connect(read_only=True) as con:
        for mart in marts:
            entry = catalog["nodes"][mart["unique_id"]]
            columns = sorted(entry["columns"].values(), key=lambda c: c["index"])
            warehouse = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_catalog = current_database() and table_schema = ? "
                "and table_name = ? order by ordinal_position",
                [mart["schema"], mart["name"]],
            ).fetchall()
            assert [(c["name"], c["type"]) for c in columns] == warehouse, mart["name"]
            undocumented = {c["name"] for c in columns} - set(mart["columns"])
            assert undocumented == set(), (mart["name"], undocumented)

    # The docs service, natively: the same command as in docker-compose.yml, on a free port
    # (its 8080 may be taken on this machine, or still in TIME_WAIT from an earlier run).
    assert COMMANDS["docs"][-2:] == ["--port", str(DOCS_PORT)]
    port = free_port()
    docs = subprocess.Popen(
        [*COMMANDS["docs"][:-1], str(port)],
        cwd=REPO,
        env={**env, "DBT_HOST": "127.0.0.1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for("dbt docs", lambda: httpx.get(f"{base}/index.html").status_code == 200, 60, docs)
        served = httpx.get(f"{base}/catalog.json").json()
        assert set(served["nodes"]) == set(catalog["nodes"])
    finally:
        os.killpg(docs.pid, 15)
        try:
            docs.wait(timeout=5)
        except subprocess.TimeoutExpired:  # dbt docs serve may ignore SIGTERM for a while
            os.killpg(docs.pid, 9)
            docs.wait(timeout=30)
