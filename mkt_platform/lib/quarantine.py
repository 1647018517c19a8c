"""Quarantine of payloads that broke their contract, kept in the lake for inspection.

When an exchange answer fails validation (a field removed, renamed or re-typed), the body is
saved exactly as it arrived, beside a JSON description of the violation, and nothing is
written to the raw partition::

    $MKT_DATA_DIR/lake/quarantine/<dataset>/<UTC time>-<sha256[:12]>.json        the body
    $MKT_DATA_DIR/lake/quarantine/<dataset>/<UTC time>-<sha256[:12]>.error.json  the violation

Rows that arrived intact but failed a blocking data-quality check (high below low, a
negative volume...) are kept apart, as the Parquet partition that was refused, so they never
reach the lake that dbt reads (and are not schema drift)::

    $MKT_DATA_DIR/lake/quarantine/rejected/<dataset>/date=<partition>/<UTC time>.parquet
    $MKT_DATA_DIR/lake/quarantine/rejected/<dataset>/date=<partition>/<UTC time>.json

The violation file holds ``dataset``, ``source`` (the request), ``field``, ``expected``,
``observed``, ``signature`` (what identifies the drift, for alerting once per change),
``detected_at`` and, once the asset has added them, ``asset_key`` and ``partitions``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mkt_platform import settings
from mkt_platform.lib import lake
from mkt_platform.lib.contracts import ContractViolation

# Temporary files of an atomic write start with this (hidden, never matching "*.json").
_TMP_PREFIX = ".q-"


def quarantine_dir() -> Path:
    """Root of the quarantine: ``$MKT_DATA_DIR/lake/quarantine``."""
    return settings.lake_dir() / "quarantine"


def signature(exc: ContractViolation) -> str:
    """What identifies one drift: the dataset, the field and what was expected.

    Two pulls that break the contract the same way (the same field re-typed) have the same
    signature even though the offending values differ, so the drift is reported once.
    """
    return f"{exc.dataset}|{exc.field or '(payload)'}|{exc.expected}"


def save(exc: ContractViolation, body: bytes) -> Path:
    """Save an offending response body and its violation; returns the body's path.

    The body is stored byte for byte; saving the same body twice gives one file.
    """
    folder = quarantine_dir() / exc.dataset
    folder.mkdir(parents=True, exist_ok=True)
    now = settings.utcnow()
    digest = hashlib.sha256(body).hexdigest()[:12]
    existing = sorted(folder.glob(f"*-{digest}.json"))
    path = existing[0] if existing else folder / f"{now:%Y%m%dT%H%M%S}Z-{digest}.json"
    lake.write_bytes_atomic(body, path, prefix=_TMP_PREFIX)
    violation = {
        "kind": exc.kind,
        "dataset": exc.dataset,
        "source": exc.source,
        "field": exc.field,
        "expected": exc.expected,
        "observed": exc.observed,
        "message": str(exc),
        "signature": signature(exc),
        "detected_at": now.isoformat(),
        "payload": path.name,
    }
    lake.write_bytes_atomic(
        json.dumps(violation, indent=2).encode(), _error_path(path), prefix=_TMP_PREFIX
    )
    return path


def _error_path(body_path: Path) -> Path:
    return body_path.with_name(body_path.name.removesuffix(".json") + ".error.json")


@contextmanager
def on_violation(body: bytes) -> Iterator[None]:
    """Quarantine ``body`` if the block raises :class:`ContractViolation`, then re-raise.

    The exception gains a ``quarantine_path`` attribute (the saved body).
    """
    try:
        yield
    except ContractViolation as exc:
        if getattr(exc, "quarantine_path", None) is None:
            exc.quarantine_path = save(exc, body)  # type: ignore[attr-defined]
        raise


def annotate(exc: ContractViolation, asset_key: str, partitions: Sequence[str]) -> None:
    """Add the asset and partitions that were being pulled to a quarantined violation."""
    path = getattr(exc, "quarantine_path", None)
    if path is None:
        return
    error_path = _error_path(Path(path))
    violation = json.loads(error_path.read_text())
    violation["asset_key"] = asset_key
    violation["partitions"] = list(partitions)
    lake.write_bytes_atomic(
        json.dumps(violation, indent=2).encode(), error_path, prefix=_TMP_PREFIX
    )


@dataclass(frozen=True)
class QuarantinedPayload:
    """One quarantined payload: its body's path and its violation record."""

    path: Path
    violation: dict[str, Any]


def list_quarantined() -> list[QuarantinedPayload]:
    """Every quarantined payload, oldest first."""
    root = quarantine_dir()
    if not root.is_dir():
        return []
    found = []
    for error_path in sorted(root.glob("*/*.error.json")):
        body = error_path.with_name(error_path.name.removesuffix(".error.json") + ".json")
        found.append(QuarantinedPayload(body, json.loads(error_path.read_text())))
    return sorted(found, key=lambda q: q.violation.get("detected_at", ""))


def save_rejected(
    dataset: str, partition_key: str, table: Any, failures: Sequence[dict[str, Any]]
) -> Path:
    """Keep a partition's rows that failed blocking data-quality checks; returns the Parquet
    file's path. Beside it, a JSON file lists the failed checks (``failures``)."""
    now = settings.utcnow()
    folder = quarantine_dir() / "rejected" / dataset / f"date={partition_key}"
    path = folder / f"{now:%Y%m%dT%H%M%S}Z.parquet"
    lake.write_parquet_atomic(table, path)
    record = {
        "dataset": dataset,
        "partition": partition_key,
        "rows": table.num_rows,
        "failed_checks": list(failures),
        "rejected_at": now.isoformat(),
    }
    lake.write_bytes_atomic(
        json.dumps(record, indent=2, default=str).encode(),
        path.with_suffix(".json"),
        prefix=_TMP_PREFIX,
    )
    return path
