"""The Parquet lake: one file per raw partition, written atomically.

Layout: ``$MKT_DATA_DIR/lake/raw/<source>/<dataset>/date=YYYY-MM-DD/part.parquet``. Each
write goes to a temporary file in the same folder and is renamed over the old one, so a
reader (or a run killed mid-write) sees either the previous file or the new one, never a
torn file, and writing the same table twice gives the same bytes.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mkt_platform import settings

#: Names of the platform's own temporary files in the lake (atomic writes in progress):
#: ``.part-*.parquet.tmp`` (Parquet), ``.tmp-*`` (bytes), ``.q-*`` (quarantine records).
TEMP_PATTERNS = (".part-*.parquet.tmp", ".tmp-*", ".q-*")
#: A temporary file older than this belongs to a write that died: it is swept.
STALE_TEMP_SECONDS = 3600


def _file_mode() -> int:
    """The mode a new file gets under this process's umask (0644 under the usual 022);
    ``mkstemp`` alone would make every lake file 0600, unreadable to other users."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _mkstemp(folder: Path, prefix: str, suffix: str) -> tuple[int, str]:
    # A write that died left its temporary file here: sweep it before adding ours.
    sweep_stale_temp_files(folder, recursive=False)
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    os.fchmod(fd, _file_mode())
    return fd, name


def sweep_stale_temp_files(
    root: Path, older_than_seconds: float = STALE_TEMP_SECONDS, *, recursive: bool = True
) -> list[Path]:
    """Delete the platform's own temporary files (:data:`TEMP_PATTERNS`) in ``root`` (and its
    sub-folders when ``recursive``) that are older than ``older_than_seconds``: debris of
    writes whose process died. A younger one may be a write in progress and is kept; no
    other file is touched. Every atomic write sweeps its own folder first; the CLI sweeps the
    whole lake when it starts.

    Returns:
        The files deleted.
    """
    if not root.is_dir():
        return []
    cutoff = time.time() - older_than_seconds
    swept = []
    for pattern in TEMP_PATTERNS:
        for path in root.rglob(pattern) if recursive else root.glob(pattern):
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    swept.append(path)
            except FileNotFoundError:  # swept by another process meanwhile
                continue
    return swept


class LakeWriteError(OSError):
    """A lake file could not be written, said plainly: the disk is full, the file system is
    read-only, or permission is denied (the previous file, if any, is left as it was)."""


#: Free bytes under which a failed write is reported as "disk full".
FULL_DISK_BYTES = 1024 * 1024


def disk_problem(path: Path, error: BaseException | None = None) -> str | None:
    """What is wrong with the disk under ``path`` (``"disk full ..."`` or ``"read-only ..."``),
    judged from ``error``'s errno and from the free space, or ``None`` when nothing is."""
    folder = path if path.is_dir() else next((p for p in path.parents if p.exists()), path)
    errno_ = getattr(error, "errno", None)
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    if errno_ in (errno.ENOSPC, errno.EDQUOT) or (free is not None and free < FULL_DISK_BYTES):
        return f"disk full: {free if free is not None else '?'} bytes free under {folder}"
    if errno_ == errno.EROFS or (error is not None and not os.access(folder, os.W_OK)):
        return f"read-only: {folder} cannot be written (read-only file system or permissions)"
    if errno_ in (errno.EACCES, errno.EPERM):
        return f"permission denied writing under {folder}"
    return None


@contextmanager
def _said_plainly(path: Path) -> Iterator[None]:
    """Turn an OSError of a lake write into a :class:`LakeWriteError` that says "disk full"
    or "read-only" when that is the cause (pyarrow's own messages and SQLite's "disk I/O
    error" do not)."""
    try:
        yield
    except LakeWriteError:
        raise
    except OSError as exc:
        problem = disk_problem(path, exc)
        if problem is None:
            raise
        raise LakeWriteError(
            exc.errno, f"cannot write {path}: {problem}; the previous file is kept ({exc})"
        ) from exc


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
    with _said_plainly(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = _mkstemp(path.parent, prefix, suffix)
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
        with _said_plainly(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = _mkstemp(self.path.parent, ".part-", ".parquet.tmp")
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
        with _said_plainly(self.path):
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
        with _said_plainly(self.path):
            self._writer.close()
            self._writer = None
        if check is not None:
            check(pq.read_table(self._tmp))
        with _said_plainly(self.path):
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
