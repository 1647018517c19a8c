"""The Kubernetes path (issue 15, item 6), checked as far as a machine without a cluster can:
``deploy/k8s/values.yaml`` (values for the official Dagster Helm chart) and
``deploy/k8s/dagster.yaml`` (the instance configuration the chart renders from them).

- The instance configuration passes Dagster 1.13's own validation, each configurable class
  (``dagster_k8s.K8sRunLauncher`` from the optional extra ``k8s``, the PostgreSQL storages,
  the queued run coordinator) accepts its section, and it opens as an instance on the local
  PostgreSQL (the chart's host name swapped for it) with the deployment's limits.
- The values and the instance configuration agree with each other and with docker-compose's
  deployment: the same warehouse settings reach the code server and every run pod, the same
  run limit, warehouse pool, retries and monitoring; no secret is in either file.

Not checked here: the values against the chart's JSON schema (the chart is not on these
package registries; the README says how they were validated), and anything a cluster does.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config

from mkt_platform import settings
from tests.conftest import PG, REPO

K8S = REPO / "deploy" / "k8s"
VALUES = yaml.safe_load((K8S / "values.yaml").read_text())
INSTANCE = yaml.safe_load((K8S / "dagster.yaml").read_text())
COMPOSE_INSTANCE = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
#: The settings every process that reads or writes the warehouse must share.
WAREHOUSE_SETTINGS = (
    "MKT_DATA_DIR",
    "MKT_WAREHOUSE",
    "MKT_DUCKLAKE_CATALOG",
    "MKT_LAKE_URL",
    "MKT_DUCKLAKE_DATA_PATH",
    "AWS_REGION",
)


def test_the_instance_configuration_passes_dagsters_validation(tmp_path):
    from dagster._core.run_coordinator.queued_run_coordinator import QueuedRunCoordinator
    from dagster_k8s import K8sRunLauncher
    from dagster_postgres.event_log import PostgresEventLogStorage
    from dagster_postgres.run_storage import PostgresRunStorage
    from dagster_postgres.schedule_storage import PostgresScheduleStorage

    shutil.copy(K8S / "dagster.yaml", tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["run_launcher"]["class"] == "K8sRunLauncher"
    for section, cls in (
        ("run_launcher", K8sRunLauncher),
        ("run_coordinator", QueuedRunCoordinator),
        ("run_storage", PostgresRunStorage),
        ("event_log_storage", PostgresEventLogStorage),
        ("schedule_storage", PostgresScheduleStorage),
    ):
        result = validate_config(cls.config_type(), INSTANCE[section]["config"])
        assert result.success, (section, [e.message for e in result.errors])
    # And the check can fail: a misspelled launcher field is refused.
    bad = {**INSTANCE["run_launcher"]["config"], "fail_pod_on_run_faillure": True}
    assert not validate_config(K8sRunLauncher.config_type(), bad).success


def test_it_opens_as_an_instance_on_postgresql_with_the_deployments_limits(
    postgres_db, tmp_path, monkeypatch
):
    """The chart's host, user and database swapped for the local server's test database (the
    password still read from DAGSTER_PG_PASSWORD, as in every pod)."""
    text = (K8S / "dagster.yaml").read_text()
    postgres = VALUES["postgresql"]
    text = text.replace(f'"{postgres["postgresqlHost"]}"', PG["host"])
    text = text.replace(f"username: {postgres['postgresqlUsername']}", f"username: {PG['user']}")
    text = text.replace(f"db_name: {postgres['postgresqlDatabase']}", f"db_name: {postgres_db}")
    (tmp_path / "dagster.yaml").write_text(text)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "")  # the local server trusts local connections
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert instance.get_runs_count() == 0
        concurrency = instance.get_concurrency_config()
        assert concurrency.run_queue_config.max_concurrent_runs == 4
        assert concurrency.pool_config.default_pool_limit == 1
        assert instance.run_retries_max_retries == 2
        # The launcher itself is built lazily, and needs a cluster: only its class is named.
        assert instance.get_ref().run_launcher_data.class_name == "K8sRunLauncher"


def test_values_and_instance_agree_with_each_other_and_with_compose(monkeypatch):
    deployment = VALUES["dagster-user-deployments"]["deployments"][0]
    launcher = VALUES["runLauncher"]["config"]["k8sRunLauncher"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "mkt_platform.definitions"]
    # The warehouse settings: the code server's, every run pod's (values and the rendered
    # instance), and compose's, one and the same (but the host of PostgreSQL).
    code_env = {k: deployment["env"][k] for k in WAREHOUSE_SETTINGS}
    run_env = dict(line.split("=", 1) for line in launcher["envVars"])
    rendered_env = dict(
        line.split("=", 1) for line in INSTANCE["run_launcher"]["config"]["env_vars"]
    )
    assert {k: run_env[k] for k in WAREHOUSE_SETTINGS} == code_env
    assert {k: rendered_env[k] for k in WAREHOUSE_SETTINGS} == code_env
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["x-dagster"]["environment"]
    assert code_env["MKT_WAREHOUSE"] == compose["MKT_WAREHOUSE"] == "ducklake"
    assert code_env["MKT_DATA_DIR"] == compose["MKT_DATA_DIR"]
    host = VALUES["postgresql"]["postgresqlHost"]
    assert code_env["MKT_DUCKLAKE_CATALOG"] == (
        f"postgres:host={host} port=5432 dbname={VALUES['postgresql']['postgresqlDatabase']} "
        f"user={VALUES['postgresql']['postgresqlUsername']}"
    )
    # The raw lake and the DuckLake's files on S3, as settings the platform accepts; the
    # credentials come from the Secret only, never the values.
    monkeypatch.setenv("MKT_LAKE_URL", code_env["MKT_LAKE_URL"])
    assert settings.lake_url() == code_env["MKT_LAKE_URL"]
    assert code_env["MKT_DUCKLAKE_DATA_PATH"].startswith("s3://")
    everything = yaml.safe_dump(VALUES) + yaml.safe_dump(INSTANCE)
    assert "AWS_ACCESS_KEY_ID" not in everything and "AWS_SECRET_ACCESS_KEY" not in everything
    # One shared volume, in the code server and in runs, for what is not on S3: the
    # quarantine, the dbt run folders, the logs.
    assert deployment["volumeMounts"] == launcher["volumeMounts"]
    assert deployment["volumes"] == launcher["volumes"]
    assert {m["mountPath"] for m in launcher["volumeMounts"]} == {code_env["MKT_DATA_DIR"]}
    # The secrets by name only, the same for the code server and the runs.
    assert deployment["envSecrets"] == launcher["envSecrets"]
    assert INSTANCE["run_launcher"]["config"]["env_secrets"] == [
        s["name"] for s in launcher["envSecrets"]
    ]
    # The limits of the compose deployment: runs, the warehouse pool, retries.
    for key in ("concurrency", "run_retries"):
        assert INSTANCE[key] == COMPOSE_INSTANCE[key], key
    assert (
        VALUES["concurrency"]["runs"]["maxConcurrentRuns"]
        == (COMPOSE_INSTANCE["concurrency"]["runs"]["max_concurrent_runs"])
    )
    assert VALUES["concurrency"]["pools"]["defaultLimit"] == 1
    (init,) = VALUES["dagsterDaemon"]["extraPrependedInitContainers"]
    assert init["command"] == ["dagster", "instance", "concurrency", "set", "duckdb_warehouse", "1"]
    monitoring = {
        k: v for k, v in INSTANCE["run_monitoring"].items() if k != "start_timeout_seconds"
    }
    compose_monitoring = {
        k: v for k, v in COMPOSE_INSTANCE["run_monitoring"].items() if k != "start_timeout_seconds"
    }
    assert monitoring | compose_monitoring == monitoring  # every compose setting kept


@pytest.mark.parametrize("path", [K8S / "values.yaml", K8S / "dagster.yaml", K8S / "api.yaml"])
def test_no_secret_is_in_the_kubernetes_files(path: Path):
    def walk(node, trail=()):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, (*trail, str(key)))
        elif isinstance(node, list):
            for item in node:
                yield from walk(item, trail)
        else:
            yield trail, node

    for trail, value in walk(list(yaml.safe_load_all(path.read_text()))):
        name = trail[-1].lower() if trail else ""
        if "password" in name or "token" in name or "secret" in name:
            # Only references: an env var to read, a Secret's name, or nothing.
            assert value in ("", None) or "secret" in name or trail[-2:] == ("password", "env"), (
                trail,
                value,
            )
        assert "password=" not in str(value).lower(), trail


API_MANIFEST = list(yaml.safe_load_all((K8S / "api.yaml").read_text()))


def test_the_api_manifest_is_valid_kubernetes_and_reads_what_the_runs_write():
    """deploy/k8s/api.yaml (the read API beside the chart) validates strictly against
    Kubernetes 1.30's own schemas (the kubernetes-validate package carries them: offline), a
    misspelled field is refused, and the API gets the code location's warehouse settings, the
    same Secret, and the lake volume read-only."""
    import kubernetes_validate

    for document in API_MANIFEST:
        kubernetes_validate.validate(document, "1.30", strict=True)
    (deployment,) = [d for d in API_MANIFEST if d["kind"] == "Deployment"]
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.30", strict=True)

    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["mkt-platform", "api"]
    env = {e["name"]: e["value"] for e in container["env"]}
    code = VALUES["dagster-user-deployments"]["deployments"][0]
    assert {k: env[k] for k in WAREHOUSE_SETTINGS} == {
        k: code["env"][k] for k in WAREHOUSE_SETTINGS
    }
    assert container["image"] == f"{code['image']['repository']}:{code['image']['tag']}"
    assert [s["secretRef"]["name"] for s in container["envFrom"]] == [
        s["name"] for s in code["envSecrets"]
    ]
    (mount,) = container["volumeMounts"]
    assert mount["readOnly"] is True and mount["mountPath"] == env["MKT_DATA_DIR"]
    assert "MKT_API_TOKEN" not in env  # from the Secret, never the manifest
