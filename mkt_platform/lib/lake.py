"""The Parquet lake: one file per raw partition, written atomically.

Layout: ``<lake>/raw/<source>/<dataset>/date=YYYY-MM-DD/part.parquet``, where ``<lake>`` is
``$MKT_DATA_DIR/lake`` (the default) or, with ``MKT_LAKE_URL=s3://bucket/prefix``, that
prefix on S3-compatible object storage (:mod:`mkt_platform.lib.s3`); nothing else changes.

Local files: each write goes to a temporary file in the same folder and is renamed over the
old one, so a reader (or a run killed mid-write) sees either the previous file or the new
one, never a torn file, and writing the same table twice gives the same bytes.

Object storage has no rename. A write there is made whole first (in memory, or in a local
temporary file for a streamed partition), uploaded to a temporary key beside the final one
(``.part-<random>.parquet.tmp``), its size checked, then copied to the final key by the
server (``CopyObject``, which makes the new object appear whole or not at all) and the
temporary key deleted. So no partial object ever sits under a final key: a run killed during
the upload leaves at most an incomplete multipart upload, which no listing shows (a bucket
lifecycle rule ``AbortIncompleteMultipartUpload`` reclaims its parts), or a whole temporary
object, which :func:`sweep_stale_temp_files` deletes after an hour like a local one.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import hashlib
import io
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from mkt_platform import settings
from mkt_platform.lib import s3

#: Names of the platform's own temporary files in the lake (atomic writes in progress):
#: ``.part-*.parquet.tmp`` (Parquet), ``.tmp-*`` (bytes), ``.q-*`` (quarantine records).
TEMP_PATTERNS = (".part-*.parquet.tmp", ".tmp-*", ".q-*")
#: A temporary file older than this belongs to a write that died: it is swept.
STALE_TEMP_SECONDS = 3600


@dataclass(frozen=True)
class ObjectStat:
    """What :meth:`ObjectPath.stat` gives: the size in bytes and the modification time (Unix
    seconds), under ``os.stat_result``'s names."""

    st_size: int
    st_mtime: float


@dataclass(frozen=True)
class ObjectPath:
    """A file of the lake on S3-compatible object storage, ``s3://<key>``, with the part of
    ``pathlib.Path``'s interface the lake's users need (``/``, ``parent``, ``name``,
    ``exists``, ``stat``), so that a raw asset handles a local path and an object alike.

    Attributes:
        key: ``bucket/key`` as pyarrow's S3 file system names it (no scheme).
    """

    key: str

    def __str__(self) -> str:
        return f"s3://{self.key}"

    def __truediv__(self, name: str) -> ObjectPath:
        return ObjectPath(f"{self.key.rstrip('/')}/{name}")

    @property
    def parent(self) -> ObjectPath:
        return ObjectPath(self.key.rsplit("/", 1)[0])

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    def _info(self) -> pafs.FileInfo:
        return s3.filesystem().get_file_info(self.key)

    def exists(self) -> bool:
        """Whether an object is stored under this key."""
        return self._info().type == pafs.FileType.File

    def stat(self) -> ObjectStat:
        """The object's size and modification time.

        Raises:
            FileNotFoundError: no object under this key.
        """
        info = self._info()
        if info.type != pafs.FileType.File:
            raise FileNotFoundError(f"no object at {self}")
        return ObjectStat(info.size, info.mtime.timestamp() if info.mtime else 0.0)


#: A lake file or folder: a local path, or an object on S3.
LakePath = Path | ObjectPath


def lake_root() -> LakePath:
    """The lake's root: ``s3://bucket/prefix`` as an :class:`ObjectPath` when ``MKT_LAKE_URL``
    sets one, else ``$MKT_DATA_DIR/lake``.

    Raises:
        mkt_platform.settings.SettingError: a malformed ``MKT_LAKE_URL``.
    """
    url = settings.lake_url()
    return ObjectPath(url.removeprefix("s3://")) if url else settings.lake_dir()


def read_table(path: LakePath, columns: list[str] | None = None) -> pa.Table:
    """Read a lake Parquet file (local or on S3), all columns or ``columns``.

    Raises:
        FileNotFoundError: no file or object at ``path``.
        OSError: the store cannot be read.
    """
    # One open file (or one GET) for the footer and the pages: read by path, pyarrow opens
    # the file again for the pages, and a file replaced in between (a writer's atomic
    # rename) gives pages that do not match the footer read before.
    if isinstance(path, ObjectPath):
        with s3.filesystem().open_input_stream(path.key) as stream:
            data = stream.read()
        return pq.read_table(pa.BufferReader(data), columns=columns)
    with pa.OSFile(str(path)) as handle:  # a native file: no Python in the read loop
        return pq.read_table(handle, columns=columns)


def read_metadata(path: LakePath) -> pq.FileMetaData:
    """The Parquet footer of a lake file (local or on S3): rows, row groups, schema.

    Raises:
        FileNotFoundError: no file or object at ``path``.
    """
    if isinstance(path, ObjectPath):
        with s3.filesystem().open_input_file(path.key) as handle:
            return pq.read_metadata(handle)
    return pq.read_metadata(path)


@dataclass(frozen=True)
class FoundFile:
    """A file :func:`find_files` found: its path, modification time (ns) and size (bytes)."""

    path: LakePath
    modified_ns: int
    size: int


def find_files(folder: LakePath, name: str) -> list[FoundFile]:
    """Every file called ``name`` under ``folder`` (at any depth, local or on S3), sorted by
    path, with its modification time and size; none when the folder does not exist. On S3
    one listing gives all of it (no request per object)."""
    if isinstance(folder, ObjectPath):
        selector = pafs.FileSelector(folder.key, recursive=True, allow_not_found=True)
        found = [
            FoundFile(
                ObjectPath(i.path),
                int(i.mtime.timestamp() * 1_000_000_000) if i.mtime else 0,
                i.size or 0,
            )
            for i in s3.filesystem().get_file_info(selector)
            if i.type == pafs.FileType.File and i.base_name == name
        ]
        return sorted(found, key=lambda f: str(f.path))
    files = []
    for path in sorted(folder.rglob(name)):
        stat = path.stat()
        files.append(FoundFile(path, stat.st_mtime_ns, stat.st_size))
    return files


def rename(source: LakePath, target: LakePath) -> None:
    """Move a lake file to ``target`` in its store. Locally an atomic ``os.replace``; on S3
    a server-side copy (atomic for ``target``: a reader sees the previous object or the new
    one) and then the source deleted, so for a moment both exist, never neither.

    Raises:
        OSError: the move failed; ``target`` then holds its previous content.
    """
    if isinstance(source, ObjectPath) and isinstance(target, ObjectPath):
        fs = s3.filesystem()
        fs.copy_file(source.key, target.key)
        fs.delete_file(source.key)
    elif isinstance(source, Path) and isinstance(target, Path):
        os.replace(source, target)
    else:
        raise ValueError(f"cannot move {source} to {target}: not in the same store")


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
    root: LakePath, older_than_seconds: float = STALE_TEMP_SECONDS, *, recursive: bool = True
) -> list[LakePath]:
    """Delete the platform's own temporary files (:data:`TEMP_PATTERNS`) in ``root`` (and its
    sub-folders when ``recursive``) that are older than ``older_than_seconds``: debris of
    writes whose process died. A younger one may be a write in progress and is kept; no
    other file is touched. Every atomic write sweeps its own folder first; the CLI sweeps the
    whole lake when it starts.

    Returns:
        The files deleted.
    """
    cutoff = time.time() - older_than_seconds
    if isinstance(root, ObjectPath):
        return _sweep_stale_objects(root, cutoff, recursive)
    if not root.is_dir():
        return []
    swept: list[LakePath] = []
    for pattern in TEMP_PATTERNS:
        for path in root.rglob(pattern) if recursive else root.glob(pattern):
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    swept.append(path)
            except FileNotFoundError:  # swept by another process meanwhile
                continue
    return swept


def _sweep_stale_objects(root: ObjectPath, cutoff: float, recursive: bool) -> list[LakePath]:
    fs = s3.filesystem()
    listing = fs.get_file_info(
        pafs.FileSelector(root.key, allow_not_found=True, recursive=recursive)
    )
    swept: list[LakePath] = []
    for info in listing:
        stale = info.mtime is not None and info.mtime.timestamp() < cutoff
        if info.type == pafs.FileType.File and stale and _is_temp_name(info.base_name):
            fs.delete_file(info.path)
            swept.append(ObjectPath(info.path))
    return swept


def _is_temp_name(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in TEMP_PATTERNS)


def _upload_whole(source: BinaryIO, size: int, path: ObjectPath, prefix: str, suffix: str) -> None:
    """Put ``size`` bytes read from ``source`` at ``path`` on S3 so that the final key only
    ever holds a whole object (see the module docstring): upload to a temporary key beside
    it, check its size, copy it server-side to ``path``, delete the temporary key.

    Raises:
        OSError: the upload, the check or the copy failed; ``path`` keeps its previous object
            (if any), and the temporary key is deleted where the store still answers.
    """
    fs = s3.filesystem()
    sweep_stale_temp_files(path.parent, recursive=False)
    tmp = path.parent / f"{prefix}{secrets.token_hex(8)}{suffix}"
    try:
        with fs.open_output_stream(tmp.key) as stream:
            shutil.copyfileobj(source, stream, 8 * 1024 * 1024)
        uploaded = fs.get_file_info(tmp.key).size
        if uploaded != size:
            raise OSError(errno.EIO, f"upload of {path} stored {uploaded} of {size} bytes")
        fs.copy_file(tmp.key, path.key)
    finally:
        # never created, or the store is gone: then the sweep deletes it later
        with contextlib.suppress(OSError):
            fs.delete_file(tmp.key)


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
def _said_plainly(path: LakePath) -> Iterator[None]:
    """Turn an OSError of a lake write into a :class:`LakeWriteError` that says "disk full"
    or "read-only" when that is the cause (pyarrow's own messages and SQLite's "disk I/O
    error" do not)."""
    try:
        yield
    except LakeWriteError:
        raise
    except OSError as exc:
        if isinstance(path, ObjectPath):
            raise
        problem = disk_problem(path, exc)
        if problem is None:
            raise
        raise LakeWriteError(
            exc.errno, f"cannot write {path}: {problem}; the previous file is kept ({exc})"
        ) from exc


def raw_partition_path(source: str, dataset: str, partition_key: str) -> LakePath:
    """Path of a raw partition's Parquet file, e.g. ``lake/raw/binance/klines_1h/date=...``
    (an :class:`ObjectPath` when the lake is on S3)."""
    return lake_root() / "raw" / source / dataset / f"date={partition_key}" / "part.parquet"


def raw_dataset_glob(source: str, dataset: str) -> str:
    """Glob matching every partition file of a raw dataset (what DuckDB reads): a local path
    or an ``s3://`` URL."""
    return str(lake_root() / "raw" / source / dataset / "date=*" / "part.parquet")


@contextmanager
def atomic_file(path: LakePath, *, prefix: str = ".tmp-", suffix: str = "") -> Iterator[BinaryIO]:
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

    An :class:`ObjectPath` gets an in-memory buffer instead, uploaded whole when the block
    ends normally (see the module docstring); nothing is uploaded when it raises.

    Yields:
        The temporary file, open in binary write mode.

    Raises:
        OSError: the folder cannot be created or the file cannot be written, synced or
            renamed; the previous file at ``path``, if any, is then left as it was.
    """
    if isinstance(path, ObjectPath):
        buffer = io.BytesIO()
        yield buffer
        size = buffer.tell()
        buffer.seek(0)
        _upload_whole(buffer, size, path, prefix, suffix)
        return
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


def write_bytes_atomic(data: bytes, path: LakePath, *, prefix: str = ".tmp-") -> None:
    """Write ``data`` to ``path`` byte for byte, atomically (see :func:`atomic_file`).

    Raises:
        OSError: the folder cannot be created or the file cannot be written; the previous
            file at ``path``, if any, is then left as it was.
    """
    with atomic_file(path, prefix=prefix) as handle:
        handle.write(data)


def write_parquet_atomic(table: pa.Table, path: LakePath) -> int:
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
    :meth:`commit` fsyncs it and renames it over ``path``. For an :class:`ObjectPath`, the
    temporary file is local (the system's temporary folder) and :meth:`commit` uploads it
    whole (see the module docstring). Leaving the ``with`` block without
    committing (an exception, a failed page) deletes the temporary file and leaves the
    previous partition file as it was. Writing no batch commits an empty file with the schema.

    Attributes:
        rows: rows written so far.
        content_hash: after :meth:`commit`, the SHA-256 of the rows as CSV, batch by batch
            (equal to :func:`content_hash` of the whole table).
    """

    def __init__(self, path: LakePath, schema: pa.Schema) -> None:
        self.path, self.schema = path, schema
        self.rows = 0
        self.content_hash = ""
        self._hash = hashlib.sha256()
        self._tmp: Path | None = None
        self._writer: pq.ParquetWriter | None = None

    def __enter__(self) -> StreamingPartitionWriter:
        with _said_plainly(self.path):
            if isinstance(self.path, ObjectPath):
                fd, tmp_name = tempfile.mkstemp(prefix=".part-", suffix=".parquet.tmp")
            else:
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
            if isinstance(self.path, ObjectPath):
                with open(self._tmp, "rb") as handle:
                    size = os.fstat(handle.fileno()).st_size
                    _upload_whole(handle, size, self.path, ".part-", ".parquet.tmp")
                self._tmp.unlink()
            else:
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
