"""The Parquet lake: one file per raw partition, written atomically.

Layout: ``$MKT_DATA_DIR/lake/raw/<source>/<dataset>/date=YYYY-MM-DD/part.parquet``. Each
write goes to a temporary file in the same folder and is renamed over the old one, so a
reader (or a run killed mid-write) sees either the previous file or the new one, never a
torn file, and writing the same table twice gives the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mkt_platform import settings


def raw_partition_path(source: str, dataset: str, partition_key: str) -> Path:
    """Path of a raw partition's Parquet file, e.g. ``lake/raw/binance/klines_1h/date=...``."""
    return settings.lake_dir() / "raw" / source / dataset / f"date={partition_key}" / "part.parquet"


def raw_dataset_glob(source: str, dataset: str) -> str:
    """Glob matching every partition file of a raw dataset (what DuckDB reads)."""
    return str(settings.lake_dir() / "raw" / source / dataset / "date=*" / "part.parquet")


def write_parquet_atomic(table: pa.Table, path: Path) -> int:
    """Write ``table`` to ``path`` atomically (temp file in the same folder, fsync, rename).

    The output is deterministic: the same table always gives the same bytes.

    Returns:
        The size of the written file in bytes.

    Raises:
        OSError: the folder cannot be created or the file cannot be written; the previous
            file at ``path``, if any, is then left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".part-", suffix=".parquet.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            pq.write_table(table, handle, compression="zstd", write_statistics=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path.stat().st_size


def content_hash(table: pa.Table) -> str:
    """SHA-256 of a table's values in row order (independent of the file format).

    Two pulls of the same exchange data give the same hash; a late candle or a corrected
    value changes it. Callers sort the table on its key first.
    """
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer)
    return hashlib.sha256(buffer.getvalue()).hexdigest()
