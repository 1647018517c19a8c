"""Deribit's volatility index (DVOL) candles, replayed from the recorded daily files.

Route: ``GET /api/v2/public/get_volatility_index_data`` with ``currency``,
``start_timestamp``, ``end_timestamp`` and ``resolution``; the answer is Deribit's
``{"result": {"data": [[timestamp, open, high, low, close], ...], "continuation": ...}}``,
candles ascending, ``continuation`` the ``end_timestamp`` of the next (older) page or
``null``.

Recordings: ``shared/data/deribit/dvol_<CUR>_1D_<first>_to_<last>.csv`` (SOURCES.md section
12): Deribit's real daily candles, newest first, ``date,symbol,open,high,low,close``; a
candle's timestamp is its UTC day's midnight. The values are served as the JSON numbers the
files print. Only resolution ``1D`` is recorded: any other answers an error, never invented
candles.

SYNTHETIC files: ``SYNTHETIC_dvol_<CUR>_<RESOLUTION>_<first>_to_<last>.csv``, written by
:func:`mkt_platform.testing.synthetic_deribit.write_synthetic_volatility_index` (generated
candles, never market data; ``date`` is the candle's UTC start, ``YYYY-MM-DD HH:MM:SS``),
are served the same way with a WARNING naming the file; they exist for the resolutions
nothing was recorded at (``3600``), and one may not share a currency and resolution with a
real recording.

Not recorded, so assumed here: at most :data:`MAX_CANDLES` candles a response (the newest
of the range), older ones behind ``continuation`` (the oldest candle's timestamp - 1).
"""

from __future__ import annotations

import bisect
import csv
import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

logger = logging.getLogger(__name__)

VOL_INDEX_PATH = "/api/v2/public/get_volatility_index_data"
#: Candles in one response (an assumption: Deribit does not document the cap).
MAX_CANDLES = 1000
_FILE_RE = re.compile(
    r"^(?P<synthetic>SYNTHETIC_)?dvol_(?P<currency>[A-Z]+)_(?P<resolution>1D|3600)_.+\.csv$"
)
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")


@dataclass(frozen=True)
class Candles:
    """One currency's recorded candles, ascending: timestamps and serialised rows."""

    timestamps: list[int]
    rows_json: list[str]


class VolatilityIndexRecordings:
    """The DVOL files of a folder, loaded on first use."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._lock = threading.Lock()
        self._candles: dict[tuple[str, str], Candles] | None = None

    def candles(self, currency: str, resolution: str) -> Candles | None:
        return self._loaded().get((currency, resolution))

    def recorded(self) -> list[str]:
        """``CUR RESOLUTION`` of every recording, sorted."""
        return sorted(f"{c} {r}" for c, r in self._loaded())

    def _loaded(self) -> dict[tuple[str, str], Candles]:
        with self._lock:
            if self._candles is None:
                self._candles = self._load()
            return self._candles

    def _load(self) -> dict[tuple[str, str], Candles]:
        found: dict[tuple[str, str], Candles] = {}
        loaded_from: dict[tuple[str, str], Path] = {}
        for path in sorted(self.data_dir.glob("*dvol_*.csv")):
            match = _FILE_RE.match(path.name)
            if match is None:
                continue
            series = (match["currency"], match["resolution"])
            if match["synthetic"]:
                logger.warning(
                    "replay: serving SYNTHETIC Deribit volatility index candles from %s: "
                    "generated data, not market data",
                    path,
                )
            rows: dict[int, str] = {}
            with path.open(newline="") as handle:
                for line in csv.DictReader(handle):
                    if line["symbol"] != match["currency"]:
                        raise ValueError(f"replay: {path.name} holds symbol {line['symbol']!r}")
                    start = datetime.fromisoformat(line["date"]).replace(tzinfo=UTC)
                    ts = int(start.timestamp() * 1000)
                    values = [line[k] for k in ("open", "high", "low", "close")]
                    if not all(_NUMBER.fullmatch(v) for v in values):
                        raise ValueError(f"replay: {path.name} {line['date']}: not numbers")
                    rows[ts] = f"[{ts},{','.join(values)}]"
            ordered = sorted(rows)
            if series in found:
                raise ValueError(
                    f"replay: {path.name} repeats the {' '.join(series)} volatility index of "
                    f"{loaded_from[series].name} (never mix SYNTHETIC and real candles, or "
                    "serve two files of one series)"
                )
            loaded_from[series] = path
            found[series] = Candles(ordered, [rows[ts] for ts in ordered])
        return found


def page(candles: Candles, start_ms: int, end_ms: int) -> tuple[list[str], int | None]:
    """The candles of ``[start_ms, end_ms]`` a response holds (the newest
    :data:`MAX_CANDLES`, ascending) and the continuation (``None`` when none is older)."""
    lo = bisect.bisect_left(candles.timestamps, start_ms)
    hi = bisect.bisect_right(candles.timestamps, end_ms)
    first = max(lo, hi - MAX_CANDLES)
    continuation = candles.timestamps[first] - 1 if first > lo else None
    return candles.rows_json[first:hi], continuation
