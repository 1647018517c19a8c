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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

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


@contextmanager
def atomic_file(path: Path, *, prefix: str = ".tmp-", suffix: str = "") -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for writing bytes; on success it replaces ``path``.

    The temporary file is created in ``path``'s folder (created if missing) and named
    ``<prefix><random><suffix>``, so the final rename stays on one file system. When the
    ``with`` block ends normally, the file is flushed, fsynced, closed and renamed over
    ``path`` (``os.replace``): a reader, or a run killed mid-write, sees either the previous
    file or the new one, never a torn file. When the block raises, the temporary file is
    removed, ``path`` is left as it was, and the exception propagates.

    Args:
        path: the file to write.
        prefix: start of the temporary file's name (a leading dot keeps it hidden).
        suffix: end of the temporary file's name.

    Yields:
        The temporary file, open in binary write mode.

    Raises:
        OSError: the folder cannot be created or the file cannot be written, synced or
            renamed; the previous file at ``path``, if any, is then left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_bytes_atomic(data: bytes, path: Path, *, prefix: str = ".tmp-") -> None:
    """Write ``data`` to ``path`` byte for byte, atomically (see :func:`atomic_file`).

    Raises:
        OSError: the folder cannot be created or the file cannot be written; the previous
            file at ``path``, if any, is then left as it was.
    """
    with atomic_file(path, prefix=prefix) as handle:
        handle.write(data)


def write_parquet_atomic(table: pa.Table, path: Path) -> int:
    """Write ``table`` to ``path`` atomically (temp file in the same folder, fsync, rename;
    see :func:`atomic_file`), zstd-compressed, with column statistics.

    The output is deterministic: the same table always gives the same bytes.

    Returns:
        The size of the written file in bytes.

    Raises:
        OSError: the folder cannot be created or the file cannot be written; the previous
            file at ``path``, if any, is then left as it was.
    """
    with atomic_file(path, prefix=".part-", suffix=".parquet.tmp") as handle:
        pq.write_table(table, handle, compression="zstd", write_statistics=True)
    return path.stat().st_size


def content_hash(table: pa.Table) -> str:
    """SHA-256 of a table's values in row order (independent of the file format).

    Two pulls of the same exchange data give the same hash; a late candle or a corrected
    value changes it. Callers sort the table on its key first.
    """
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer)
    return hashlib.sha256(buffer.getvalue()).hexdigest()


class StreamingPartitionWriter:
    """Write a raw partition batch by batch, atomically: memory holds one batch at a time.

    Batches go to a temporary Parquet file in the partition's folder (one row group each);
    :meth:`commit` fsyncs it and renames it over ``path``. Leaving the ``with`` block without
    committing (an exception, a failed page) deletes the temporary file and leaves the
    previous partition file as it was. Writing no batch commits an empty file with the schema.

    Attributes:
        rows: rows written so far.
        content_hash: after :meth:`commit`, the SHA-256 of the rows as CSV, batch by batch
            (equal to :func:`content_hash` of the whole table).
    """

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path, self.schema = path, schema
        self.rows = 0
        self.content_hash = ""
        self._hash = hashlib.sha256()
        self._tmp: Path | None = None
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> StreamingPartitionWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=".part-", suffix=".parquet.tmp", dir=self.path.parent
        )
        os.close(fd)
        self._tmp = Path(tmp_name)
        self._writer = pq.ParquetWriter(
            self._tmp, self.schema, compression="zstd", write_statistics=True
        )
        return self

    def write(self, table: pa.Table) -> None:
        """Append one batch (cast to the schema); an empty batch is ignored."""
        if table.num_rows == 0 or self._writer is None:
            return
        table = table.cast(self.schema)
        self._writer.write_table(table)
        buffer = io.BytesIO()
        pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=self.rows == 0))
        self._hash.update(buffer.getvalue())
        self.rows += table.num_rows

    def commit(self, check: Callable[[pa.Table], None] | None = None) -> int:
        """Close, fsync and rename the file over ``path``. Returns its size in bytes.

        Args:
            check: called with the whole written table before the rename; if it raises,
                nothing replaces ``path`` (the temporary file is removed on leaving the
                ``with`` block) and the exception propagates.
        """
        assert self._writer is not None and self._tmp is not None
        if self.rows == 0:
            buffer = io.BytesIO()
            pacsv.write_csv(self.schema.empty_table(), buffer)
            self._hash.update(buffer.getvalue())
        self._writer.close()
        self._writer = None
        if check is not None:
            check(pq.read_table(self._tmp))
        with open(self._tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(self._tmp, self.path)
        self._tmp = None
        self.content_hash = self._hash.hexdigest()
        return self.path.stat().st_size

    def __exit__(self, *exc_info: object) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
