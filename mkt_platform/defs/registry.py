"""The registry of raw datasets: every venue folder's ``datasets.py`` ``DATASETS``.

A venue folder (``mkt_platform/defs/<venue>/``) with a ``datasets.py`` declares its raw
datasets there, each once, as a :class:`~mkt_platform.lib.datasets.RawDataset`. The raw
assets, their freshness checks, drift watch, late-data re-pulls and refresh schedules are
all built from what this returns; no other module lists raw datasets.
"""

from __future__ import annotations

import importlib
import pkgutil

import dagster as dg

from mkt_platform.lib.datasets import RawDataset


@dg.definitions
def defs() -> dg.Definitions:
    """The raw assets of every declared dataset, and the schedules of their own."""
    return dg.Definitions.merge(*(dataset.definitions() for dataset in raw_datasets()))


def raw_datasets() -> tuple[RawDataset, ...]:
    """Every declared raw dataset, venues in alphabetical order, each venue's in its order.

    Raises:
        ValueError: two datasets share an asset key.
    """
    from mkt_platform import defs

    found: list[RawDataset] = []
    for module in sorted(pkgutil.iter_modules(defs.__path__), key=lambda m: m.name):
        if not module.ispkg:
            continue
        name = f"{defs.__name__}.{module.name}.datasets"
        try:
            venue = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        found.extend(venue.DATASETS)
    keys = [dataset.name for dataset in found]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ValueError(f"raw datasets declared twice: {', '.join(duplicates)}")
    return tuple(found)
