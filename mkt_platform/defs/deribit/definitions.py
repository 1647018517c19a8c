"""Deribit domain: the client resource (the raw datasets are declared in ``datasets.py``)."""

from __future__ import annotations

import dagster as dg

from mkt_platform import settings
from mkt_platform.defs.deribit.resources import DeribitClient


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        resources={
            "deribit": DeribitClient(
                base_url=settings.deribit_base_url(),
                history_base_url=settings.deribit_history_base_url(),
            )
        }
    )
