"""Minute buffers flushed to hourly Parquet files of the lake, atomically.

Layout: ``<lake>/raw/<venue>/<dataset>/date=YYYY-MM-DD/hour=HH/`` (the lake is
``$MKT_DATA_DIR/lake``, or ``MKT_LAKE_URL`` on S3):

* ``open.parquet`` while the hour is being captured: every minute closed so far;
* ``part.parquet`` once the hour is closed (renamed from ``open.parquet``, atomically; on S3
  copied server-side, then the open object deleted): the partition Dagster builds from.

A minute is closed, and flushed, when a row of a later minute arrives (the stream's own
times for candles and liquidations; the receive time for asset contexts). A flush rewrites
the hour's file with the minute's rows merged in (a temporary file renamed over it,
:func:`mkt_platform.lib.lake.write_parquet_atomic`), so a reader, or a process killed at any
moment, sees the previous file or the new one, never a torn one: a kill loses at most the
minute not yet flushed. A restarted capture merges into the hour's ``open.parquet`` and goes
on. Merging follows the dataset's rule: the latest row per key (a value received again, or
after a reconnect, replaces the earlier one), or every distinct row once (liquidations).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import pyarrow as pa

from mkt_platform.capture.frames import MINUTE_MS, Dataset
from mkt_platform.lib import lake

HOUR_MS = 60 * MINUTE_MS


def dataset_folder(root: lake.LakePath, dataset: Dataset) -> lake.LakePath:
    """The folder of ``dataset`` under the lake ``root``: ``raw/<venue>/<dataset>``."""
    return root / "raw" / dataset.venue / dataset.name


def hour_folder(root: lake.LakePath, dataset: Dataset, hour_ms: int) -> lake.LakePath:
    """The folder of one hour of ``dataset`` under the lake ``root``."""
    moment = datetime.fromtimestamp(hour_ms / 1000, UTC)
    return dataset_folder(root, dataset) / f"date={moment:%Y-%m-%d}" / f"hour={moment:%H}"


def hour_files(
    root: lake.LakePath, dataset: Dataset, name: str
) -> list[tuple[datetime, lake.FoundFile]]:
    """The hour files called ``name`` (``open.parquet`` or ``part.parquet``) of ``dataset``
    under ``root``, with the start of their hour (UTC), in time order (one listing)."""
    files = []
    for found in lake.find_files(dataset_folder(root, dataset), name):
        day, hour = found.path.parent.parent.name, found.path.parent.name
        if not (day.startswith("date=") and hour.startswith("hour=")):
            continue
        moment = datetime.strptime(f"{day[5:]} {hour[5:]}", "%Y-%m-%d %H").replace(tzinfo=UTC)
        files.append((moment, found))
    return sorted(files, key=lambda pair: pair[0])


class HourlySink:
    """The open minutes of one dataset in memory, and their flushes to the lake.

    Attributes:
        rows_written: rows flushed so far (a row merged again counts again).
        hours_closed: the hours closed so far (their start, UTC ms).
    """

    def __init__(self, dataset: Dataset, root: lake.LakePath) -> None:
        self.dataset, self.root = dataset, root
        self._pending: dict[int, dict[tuple, dict]] = defaultdict(dict)
        self._latest_minute: int | None = None
        self.rows_written = 0
        self.hours_closed: list[int] = []
        # The hours with an open.parquet: listed from the lake once (what a previous run
        # left open), then kept here, so that a minute's flush lists nothing (on S3 a
        # listing is a request).
        self._open_hours: dict[int, lake.LakePath] | None = None

    def add(self, row: dict) -> None:
        """Buffer a row in its minute; flush every minute before the newest one seen."""
        minute = row[self.dataset.time_column] // MINUTE_MS * MINUTE_MS
        key = tuple(row[c] for c in self.dataset.key)
        if self.dataset.keep_all:
            self._pending[minute].setdefault(key, row)
        else:
            self._pending[minute][key] = row
        if self._latest_minute is None or minute > self._latest_minute:
            self._latest_minute = minute
            self.flush(before=minute)

    def flush(self, before: int | None = None) -> None:
        """Write the buffered minutes before ``before`` (all of them when ``None``, at
        shutdown) into their hours' files, then close every hour that ended before the
        newest minute seen."""
        minutes = sorted(m for m in self._pending if before is None or m < before)
        by_hour: dict[int, list[dict]] = defaultdict(list)
        for minute in minutes:
            by_hour[minute // HOUR_MS * HOUR_MS].extend(self._pending.pop(minute).values())
        for hour, rows in sorted(by_hour.items()):
            self._merge(hour, rows)
        if self._latest_minute is not None:
            self._close_hours_before(self._latest_minute // HOUR_MS * HOUR_MS)

    def _merge(self, hour: int, rows: list[dict]) -> None:
        folder = hour_folder(self.root, self.dataset, hour)
        path = folder / "open.parquet"
        if not path.exists() and (folder / "part.parquet").exists():
            path = folder / "part.parquet"  # a late row of a closed hour: merged there
        new = pa.Table.from_pylist(rows, schema=self.dataset.schema)
        table = pa.concat_tables([lake.read_table(path), new]) if path.exists() else new
        merged = self._deduplicated(table)
        lake.write_parquet_atomic(merged, path)
        self.rows_written += len(rows)
        if path.name == "open.parquet":
            self._open().setdefault(hour, path)

    def _deduplicated(self, table: pa.Table) -> pa.Table:
        """One row per key: the last in ``table``'s order (latest rule) or the first (a
        liquidation received twice is one), sorted by key. Vectorized (Arrow's hash group-by),
        as the hour's file is merged at every minute."""
        keys = list(self.dataset.key)
        indexed = table.append_column("__row", pa.array(range(table.num_rows), pa.int64()))
        pick = "min" if self.dataset.keep_all else "max"
        chosen = indexed.group_by(keys, use_threads=False).aggregate([("__row", pick)])
        kept = table.take(chosen[f"__row_{pick}"])
        return kept.sort_by([(k, "ascending") for k in keys])

    def _open(self) -> dict[int, lake.LakePath]:
        if self._open_hours is None:
            self._open_hours = {
                int(start.timestamp() * 1000): found.path
                for start, found in hour_files(self.root, self.dataset, "open.parquet")
            }
        return self._open_hours

    def _close_hours_before(self, hour: int) -> None:
        open_hours = self._open()
        for start_ms in sorted(h for h in open_hours if h < hour):
            path = open_hours.pop(start_ms)
            lake.rename(path, path.parent / "part.parquet")
            self.hours_closed.append(start_ms)
