"""The environment of a benchmark's fresh platform: an empty data dir and a Dagster instance
of the embedded default config, as `mkt-platform materialize` sets them up."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mkt_platform.cli import EMBEDDED_DAGSTER_YAML
from mkt_platform.settings import enable_event_batches


def fresh_platform_environment(
    folder: Path, replay_environment: dict[str, str] | None = None
) -> dict[str, str]:
    """This process's environment with ``MKT_DATA_DIR`` at ``folder/data`` and
    ``DAGSTER_HOME`` at ``folder/dagster_home`` (created, holding the embedded
    ``mkt_platform/dagster.yaml``), batched event writes on, and ``replay_environment`` (a
    :meth:`ReplayServer.platform_environment` with the recorded instrument universe) over it.
    """
    home = folder / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(EMBEDDED_DAGSTER_YAML, home / "dagster.yaml")
    env = {
        **os.environ,
        "MKT_DATA_DIR": str(folder / "data"),
        "DAGSTER_HOME": str(home),
        **(replay_environment or {}),
    }
    enable_event_batches(env)
    return env
