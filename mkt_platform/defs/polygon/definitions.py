"""Polygon domain: the client resource (the raw datasets are declared in ``datasets.py``).

The API key is read from ``POLYGON_API_KEY`` when a run uses the client (``dagster.EnvVar``:
the key is in no run configuration, no event and no log); without it a Polygon run fails
saying so, and the rest of the platform is unaffected.
"""

from __future__ import annotations

import os

import dagster as dg

from mkt_platform import settings
from mkt_platform.defs.polygon.resources import PolygonClient


@dg.definitions
def defs() -> dg.Definitions:
    api_key = dg.EnvVar("POLYGON_API_KEY") if os.environ.get("POLYGON_API_KEY") else ""
    return dg.Definitions(
        resources={"polygon": PolygonClient(base_url=settings.polygon_base_url(), api_key=api_key)}
    )
