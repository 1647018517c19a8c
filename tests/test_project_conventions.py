"""The project's conventions outside its code: the lock that `make install` syncs from, how
`dg` (dg dev, dg check defs) reads the project, and the settings documented wherever a user
looks for them. No Dagster process is started: each test reads files, or runs uv offline, in
well under a second."""

import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _locked_versions() -> dict[str, set[str]]:
    """Versions of uv.lock by package name (a package may be locked at one version per
    Python), without the project itself."""
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    versions: dict[str, set[str]] = defaultdict(set)
    for package in lock["package"]:
        if "editable" not in package["source"]:
            versions[package["name"]].add(package["version"])
    return versions


def test_lock_matches_pyproject():
    """uv.lock was updated after the last change of pyproject.toml's dependencies. `make
    install` (`uv sync --locked`) refuses a stale lock too, but only once the stamp is out of
    date; this says it in the suite, offline."""
    done = subprocess.run(
        [str(BIN / "uv"), "lock", "--check", "--offline"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_suite_runs_on_the_locked_versions():
    """The venv holds exactly the versions of uv.lock, which a fresh machine installs: the
    suite never passes on a version that CI would not get (a venv upgraded by hand, or synced
    from an older lock)."""
    drift = {}
    for name, versions in _locked_versions().items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # locked for another platform or Python only (pywin32, ...)
        if installed not in versions:
            drift[name] = (installed, sorted(versions))
    assert not drift, f"installed != uv.lock (run `make install`): {drift}"


def test_locked_pins():
    """The pins that matter: dbt-core stays on 1.11 (1.12 cannot be installed from the
    registry alone), and dg is dagster's own release (dg of another release loads the
    definitions with APIs this dagster does not have)."""
    locked = {name: min(versions) for name, versions in _locked_versions().items()}
    assert locked["dbt-core"].startswith("1.11."), locked["dbt-core"]
    assert locked["dagster-dg-cli"] == locked["dagster"], (
        locked["dagster-dg-cli"],
        locked["dagster"],
    )


def test_dg_sees_the_code_location_of_the_workspace():
    """`dg dev` and `dg check defs` load the same module, under the same location name, as
    workspace.yaml and the deployment: dg's default name is the checkout's folder name, and a
    run recorded under another name would not show with its location in the UI."""
    from dagster_dg_core.context import DgContext

    context = DgContext.for_project_environment(REPO, {})
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    (entry,) = workspace["load_from"]
    assert context.code_location_target_module_name == entry["python_module"]["module_name"]
    assert context.code_location_name == entry["python_module"]["location_name"]
    assert context.defs_module_name == "mkt_platform.defs"


def test_embedded_instance_config_is_valid(tmp_path):
    """`dg dev` reads the instance configuration of DAGSTER_HOME only (a dagster.yaml in the
    working folder is ignored, with a warning). The embedded default that `mkt-platform
    materialize` copies there must be a valid instance configuration that keeps the
    warehouse pool at one writer."""
    from dagster._core.instance.config import dagster_instance_config

    from mkt_platform.cli import EMBEDDED_DAGSTER_YAML

    shutil.copy(EMBEDDED_DAGSTER_YAML, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["concurrency"]["pools"]["default_limit"] == 1


def test_no_instance_config_in_the_repository_root():
    """`dg dev` from the repository root logs that a dagster.yaml (or .yml) there is ignored
    whenever DAGSTER_HOME is another folder (dagster/_cli/dev.py): the embedded default lives
    in the package, and reaches DAGSTER_HOME through the CLI."""
    assert not [p.name for p in REPO.glob("dagster.y*ml")]


#: Settings that .env.example leaves out on purpose: the compose file sets the data directory
#: (the volume) and the event batches itself, and the AWS SDKs' alternative spellings are
#: documented beside the names listed.
NOT_FOR_DOTENV = {
    "MKT_DATA_DIR",
    "DAGSTER_EVENT_BATCH_SIZE",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL_S3",
}
SETTING = r"(?:MKT|AWS|DAGSTER|POLYGON|BINANCE|HYPERLIQUID|DERIBIT)_[A-Z0-9_]+"


def _settings_read() -> set[str]:
    """The environment variables the platform reads as settings: every name quoted in
    ``mkt_platform/settings.py`` (the one module that reads them), and the secrets resolved
    by Dagster where they are used (``dg.EnvVar("...")``, which keeps them out of the UI)."""
    names = set(re.findall(rf'"({SETTING})"', (REPO / "mkt_platform/settings.py").read_text()))
    for module in (REPO / "mkt_platform").rglob("*.py"):
        names |= set(re.findall(rf'EnvVar\("({SETTING})"\)', module.read_text()))
    return names


def test_every_setting_is_documented_and_named_in_env_example():
    """Each setting the platform reads (:func:`_settings_read`) is in the table of
    ``mkt_platform/settings.py``'s docstring, in the README's Settings table, and (but for
    :data:`NOT_FOR_DOTENV`) among the names ``.env.example`` gives a deployment: a setting
    added in code alone fails here, naming it."""
    read = _settings_read()
    assert {"MKT_SESSION_ANCHOR_HOUR", "MKT_WAREHOUSE", "POLYGON_API_KEY"} <= read
    docstring = (REPO / "mkt_platform/settings.py").read_text().split('"""', 2)[1]
    readme = (REPO / "README.md").read_text()
    settings_table = readme[readme.index("\n## Settings") : readme.index("\n## Keeping up")]
    example = (REPO / ".env.example").read_text()
    listed = set(re.findall(r"^#* *([A-Z][A-Z0-9_]*)=", example, re.M))
    assert sorted(read - set(re.findall(SETTING, docstring))) == [], "settings.py's table"
    assert sorted(v for v in read if f"`{v}`" not in settings_table) == [], "README Settings"
    assert sorted(read - listed - NOT_FOR_DOTENV) == [], ".env.example"
