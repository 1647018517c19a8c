"""Replay of Deribit ``GET /api/v2/public/get_last_trades_by_currency_and_time``.

Emulated endpoint (live: ``https://www.deribit.com``, last 24 hours only; older days:
``https://history.deribit.com``, same path and answer; see
https://docs.deribit.com/api-reference/market-data/public-get_last_trades_by_currency_and_time):

* ``currency`` (BTC, ETH, USDC, USDT, EURR), ``start_timestamp`` and ``end_timestamp`` (UTC
  ms, both inclusive) are mandatory; ``kind`` (future, option, spot, future_combo,
  option_combo, combo, any; absent means any), ``count`` (default 10, 1..1000), ``sorting``
  (asc, desc, default) and ``include_old`` (true/false) are optional.
* ``sorting=asc`` answers the *first* ``count`` trades of the range, ascending by trade id
  (= by time); ``desc`` and ``default`` answer the *last* ``count``, newest first (the
  QuantLet file is a concatenation of such default-sorted pages). ``has_more`` is true when
  the range holds more trades than the page.
* The answer is JSON-RPC: ``{"jsonrpc":"2.0","result":{"trades":[...],"has_more":false},
  "usIn":..,"usOut":..,"usDiff":..,"testnet":false}``.
* Invalid parameters, and a ``start_timestamp`` in the future (as the real API does), are
  HTTP 400 with ``{"error":{"code":-32602,"message":"Invalid params","data":{"reason":..,
  "param":..}}}``. A ``start_timestamp`` after ``end_timestamp`` answers no trades.
* ``include_old`` is validated but otherwise ignored: every recorded trade is served. Pass
  ``max_age_ms=86_400_000`` to emulate the live API's documented window instead (a
  ``start_timestamp`` older than that answers no trades, without an error).

Recordings (``data_dir`` = ``shared/data/deribit``):

* ``quantlet_trades_{CURRENCY}_options_*.csv``: the QuantLet CSV of real Deribit BTC option
  trades, **2022-01-01 00:00:20 - 10:29:36 UTC only** (SOURCES.md section 7). It repeats
  most trades up to six times; they are deduplicated on ``trade_id`` (and must agree).
  Its columns map back to Deribit's names (``q`` -> ``amount``, ``p`` -> ``price``,
  ``t`` -> ``timestamp``; the constant ``s`` and the date ``d`` are dropped). Values are
  served with the JSON types of the API: ints for ``trade_seq``/``timestamp``/
  ``tick_direction``, a string ``trade_id``, numbers with a decimal point for prices,
  amounts and ``iv``, written from the recorded decimal text (``"5.0E-4"`` -> ``0.0005``,
  ``"46786"`` -> ``46786.0``) so no float noise appears. ``mark_price`` and ``contracts``
  are not in the recording and are left out, never invented.
* ``amberdata_trades_{CURRENCY}_options_*.json``: every BTC option trade of **2024-04-01
  00:00:01 - 01:59:21 UTC** as the vendor Amberdata recorded them from Deribit's public tape
  (SOURCES.md section 11), mapped back to Deribit's names: ``tradeId`` -> ``trade_id``,
  ``exchangeTimestamp`` -> ``timestamp``, ``instrument`` -> ``instrument_name``,
  ``tradeAmount`` -> ``amount``, ``tradeIv`` -> ``iv``, ``indexPrice`` -> ``index_price``,
  ``exchangeDirection`` +1/-1 -> ``direction`` buy/sell, ``tickDirection`` text -> Deribit's
  0-3, and ``blockTradeId``/``liquidation`` -> ``block_trade_id``/``liquidation``, sent only
  when set (Deribit leaves them out of ordinary trades). Served ascending by timestamp then
  trade id. Not in the recording, so left out, never invented: ``trade_seq`` (Amberdata
  keeps none), ``mark_price`` (Amberdata's pre/post-trade marks come from its own order-book
  snapshots, not Deribit's per-trade mark), ``contracts`` and ``block_trade_leg_count``.
  Amberdata's own additions (greeks, order-book context, ``underlyingPrice``) are not served.
* ``SYNTHETIC_deribit_trades_{CURRENCY}_{kind}_{YYYY-MM-DD}.jsonl``: generated days (see
  :mod:`mkt_platform.testing.synthetic_deribit`), served line for line, with a WARNING
  saying SYNTHETIC logged once per file. A synthetic day may not overlap a real recording.

A currency/kind that was never recorded (ETH, futures, or ``kind=any``, which would need
futures too) answers HTTP 404 with a ``replay:`` error, so a gap in the recordings is never
mistaken for a quiet market. A recorded currency/kind with a time range outside the
recordings answers an empty ``trades`` list with ``has_more`` false, like the API.
"""

from __future__ import annotations

import bisect
import csv
import itertools
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from mkt_platform.replay.deribit_dvol import VOL_INDEX_PATH, VolatilityIndexRecordings
from mkt_platform.replay.deribit_dvol import page as dvol_page
from mkt_platform.replay.server import Response

logger = logging.getLogger(__name__)

TRADES_PATH = "/api/v2/public/get_last_trades_by_currency_and_time"
CURRENCIES = ("BTC", "ETH", "USDC", "USDT", "EURR")
KINDS = ("future", "option", "spot", "future_combo", "option_combo", "combo", "any")
SORTINGS = ("asc", "desc", "default")
DEFAULT_COUNT = 10
MAX_COUNT = 1000
INVALID_PARAMS = -32602

_DAY_MS = 86_400_000
_CSV_RE = re.compile(r"^quantlet_trades_(?P<currency>[A-Z]+)_options_.+\.csv$")
_AMBERDATA_RE = re.compile(r"^amberdata_trades_(?P<currency>[A-Z]+)_options_.+\.json$")
#: Amberdata's text for Deribit's numeric ``tick_direction``.
_AMBERDATA_TICKS = {"Plus Tick": 0, "Zero-Plus Tick": 1, "Minus Tick": 2, "Zero-Minus Tick": 3}
_SYNTHETIC_RE = re.compile(
    r"^SYNTHETIC_deribit_trades_(?P<currency>[A-Z]+)_(?P<kind>[a-z_]+)_"
    r"(?P<day>\d{4}-\d{2}-\d{2})\.jsonl$"
)
_CSV_COLUMNS = (
    "q",
    "p",
    "s",
    "t",
    "d",
    "trade_seq",
    "trade_id",
    "tick_direction",
    "iv",
    "instrument_name",
    "index_price",
    "direction",
)
_DIGITS = re.compile(r"[0-9]+")
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_INT_PARAM = re.compile(r"[0-9]{1,19}")


class DeribitError(Exception):
    """A request Deribit would reject (or the replay cannot answer); becomes a JSON-RPC error."""

    def __init__(
        self, status: int, code: int, message: str, data: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.data = status, code, message, data


def _invalid(param: str, reason: str) -> DeribitError:
    return DeribitError(400, INVALID_PARAMS, "Invalid params", {"reason": reason, "param": param})


def _not_recorded(message: str) -> DeribitError:
    return DeribitError(404, -1, f"replay: {message}")


@dataclass(frozen=True)
class _Trades:
    """Trades of one recording, ascending by trade id (= time), pre-serialised."""

    timestamps: list[int]
    rows_json: list[str]


@dataclass(frozen=True)
class _Source:
    """One recording of a currency/kind covering ``[first_ms, last_ms]``."""

    first_ms: int
    last_ms: int
    paths: tuple[Path, ...]
    synthetic: bool


class DeribitHandler:
    """Answers Deribit's trades-by-currency-and-time requests from the files in ``data_dir``.

    Args:
        data_dir: the folder of Deribit recordings (``shared/data/deribit``).
        clock: seconds since the epoch, for the "start_timestamp in the future" check and
            ``usIn``/``usOut``.
        max_age_ms: if set, emulate the live API's window: a ``start_timestamp`` older than
            ``now - max_age_ms`` answers no trades. ``None`` (default) serves everything.
        synthetic_days_cached: how many synthetic day files to keep in memory (each
            200,000-trade day takes about 100 MB).

    The real recordings are loaded on the first request; synthetic days when a request
    first reaches them.
    """

    def __init__(
        self,
        data_dir: Path | str,
        *,
        clock: Callable[[], float] = time.time,
        max_age_ms: int | None = None,
        synthetic_days_cached: int = 3,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.clock = clock
        self.max_age_ms = max_age_ms
        self.synthetic_days_cached = max(1, synthetic_days_cached)
        self._lock = threading.Lock()
        self._sources: dict[tuple[str, str], list[_Source]] | None = None
        self._recorded: dict[tuple[Path, ...], _Trades] = {}
        self._synthetic: OrderedDict[Path, _Trades] = OrderedDict()
        self._warned: set[Path] = set()
        self._dvol = VolatilityIndexRecordings(self.data_dir)

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> Response:
        us_in = self._now_us()
        if path.rstrip("/") == VOL_INDEX_PATH and method == "GET":
            try:
                data, continuation = self._volatility_index(query)
            except DeribitError as err:
                return _error_response(err, us_in, self._now_us())
            us_out = self._now_us()
            return Response.raw_json(
                (
                    '{"jsonrpc":"2.0","result":{"data":['
                    + ",".join(data)
                    + '],"continuation":'
                    + ("null" if continuation is None else str(continuation))
                    + f'}},"usIn":{us_in},"usOut":{us_out},"usDiff":{us_out - us_in},'
                    + '"testnet":false}'
                ).encode()
            )
        if path.rstrip("/") != TRADES_PATH:
            return _error_response(
                _not_recorded(f"deribit has no route {method} {path}"), us_in, self._now_us()
            )
        if method != "GET":
            return _error_response(
                DeribitError(405, -1, f"replay: deribit {TRADES_PATH} only answers GET"),
                us_in,
                self._now_us(),
                {"Allow": "GET"},
            )
        try:
            trades, has_more = self._trades(query, us_in // 1000)
        except DeribitError as err:
            return _error_response(err, us_in, self._now_us())
        us_out = self._now_us()
        return Response.raw_json(
            (
                '{"jsonrpc":"2.0","result":{"trades":['
                + ",".join(trades)
                + f'],"has_more":{"true" if has_more else "false"}}},'
                + f'"usIn":{us_in},"usOut":{us_out},"usDiff":{us_out - us_in},"testnet":false}}'
            ).encode()
        )

    def _volatility_index(self, query: dict[str, list[str]]) -> tuple[list[str], int | None]:
        currency = _param(query, "currency", required=True)
        if currency not in CURRENCIES:
            raise _invalid("currency", f"must be one of {', '.join(CURRENCIES)}")
        start = _int_param(query, "start_timestamp", required=True)
        end = _int_param(query, "end_timestamp", required=True)
        resolution = _param(query, "resolution", required=True)
        assert start is not None and end is not None and resolution is not None
        candles = self._dvol.candles(currency, resolution)
        if candles is None:
            raise _not_recorded(
                f"no recording of the {currency} volatility index at resolution {resolution} "
                f"in {self.data_dir}; recorded: {', '.join(self._dvol.recorded()) or 'nothing'}"
            )
        return dvol_page(candles, start, end)

    def _now_us(self) -> int:
        return int(self.clock() * 1_000_000)

    def _trades(self, query: dict[str, list[str]], now_ms: int) -> tuple[list[str], bool]:
        currency = _param(query, "currency", required=True)
        if currency not in CURRENCIES:
            raise _invalid("currency", f"must be one of {', '.join(CURRENCIES)}")
        kind = _param(query, "kind") or "any"
        if kind not in KINDS:
            raise _invalid("kind", f"must be one of {', '.join(KINDS)}")
        start = _int_param(query, "start_timestamp", required=True)
        end = _int_param(query, "end_timestamp", required=True)
        count = _int_param(query, "count")
        if count is None:
            count = DEFAULT_COUNT
        elif not 1 <= count <= MAX_COUNT:
            raise _invalid("count", f"must be between 1 and {MAX_COUNT}")
        sorting = _param(query, "sorting") or "default"
        if sorting not in SORTINGS:
            raise _invalid("sorting", f"must be one of {', '.join(SORTINGS)}")
        include_old = _param(query, "include_old")
        if include_old is not None and include_old not in ("true", "false"):
            raise _invalid("include_old", "must be true or false")
        assert start is not None and end is not None
        if start > now_ms:
            raise _invalid("start_timestamp", "start_timestamp is in the future")

        sources = self._sources_of(currency, kind)
        if start > end or (self.max_age_ms is not None and start < now_ms - self.max_age_ms):
            return [], False
        slices = []
        for source in sources:
            if source.last_ms < start or source.first_ms > end:
                continue
            trades = self._load(source)
            lo = bisect.bisect_left(trades.timestamps, start)
            hi = bisect.bisect_right(trades.timestamps, end)
            if hi > lo:
                slices.append((trades.rows_json, lo, hi))
        total = sum(hi - lo for _, lo, hi in slices)
        page: list[str] = []
        if sorting == "asc":
            for rows, lo, hi in slices:
                page.extend(rows[lo : min(hi, lo + count - len(page))])
                if len(page) == count:
                    break
        else:
            for rows, lo, hi in reversed(slices):
                page.extend(reversed(rows[max(lo, hi - (count - len(page))) : hi]))
                if len(page) == count:
                    break
        return page, total > len(page)

    # -- recordings ----------------------------------------------------------------------

    def _sources_of(self, currency: str, kind: str) -> list[_Source]:
        with self._lock:
            if self._sources is None:
                self._sources = self._index()
            sources = self._sources.get((currency, kind))
        if sources is None:
            recorded = sorted(f"{c}/{k}" for c, k in self._sources)
            why = (
                " (kind=any would include futures and spot, which were not recorded)"
                if kind == "any"
                else ""
            )
            raise _not_recorded(
                f"no recording of {currency} kind={kind} trades in {self.data_dir}{why}; "
                f"recorded: {', '.join(recorded) or 'nothing'}"
            )
        return sources

    def _index(self) -> dict[tuple[str, str], list[_Source]]:
        found: dict[tuple[str, str], list[_Source]] = {}
        if not self.data_dir.is_dir():
            logger.warning("replay: no Deribit recordings, %s does not exist", self.data_dir)
            return found
        csvs: dict[str, list[Path]] = {}
        for path in sorted(self.data_dir.glob("quantlet_trades_*.csv")):
            match = _CSV_RE.match(path.name)
            if match is None:
                logger.debug("replay: ignoring %s (not quantlet_trades_CUR_options_*)", path)
                continue
            csvs.setdefault(match["currency"], []).append(path)
        for currency, paths in csvs.items():
            key = tuple(paths)
            trades = _load_quantlet(paths, currency)
            self._recorded[key] = trades
            if trades.timestamps:
                found.setdefault((currency, "option"), []).append(
                    _Source(trades.timestamps[0], trades.timestamps[-1], key, synthetic=False)
                )
        for path in sorted(self.data_dir.glob("amberdata_trades_*.json")):
            match = _AMBERDATA_RE.match(path.name)
            if match is None:
                logger.debug("replay: ignoring %s (not amberdata_trades_CUR_options_*)", path)
                continue
            trades = _load_amberdata(path, match["currency"])
            self._recorded[(path,)] = trades
            if trades.timestamps:
                found.setdefault((match["currency"], "option"), []).append(
                    _Source(trades.timestamps[0], trades.timestamps[-1], (path,), synthetic=False)
                )
        for path in sorted(self.data_dir.glob("SYNTHETIC_deribit_trades_*.jsonl")):
            match = _SYNTHETIC_RE.match(path.name)
            if match is None or match["currency"] not in CURRENCIES or match["kind"] not in KINDS:
                logger.debug("replay: ignoring %s (not a synthetic day file name)", path)
                continue
            day_ms = _day_start_ms(date.fromisoformat(match["day"]))
            found.setdefault((match["currency"], match["kind"]), []).append(
                _Source(day_ms, day_ms + _DAY_MS - 1, (path,), synthetic=True)
            )
        for key, sources in found.items():
            sources.sort(key=lambda s: s.first_ms)
            for before, after in itertools.pairwise(sources):
                if after.first_ms <= before.last_ms:
                    raise ValueError(
                        f"replay: Deribit {key[0]}/{key[1]} recordings overlap in time: "
                        f"{[p.name for p in before.paths]} and {[p.name for p in after.paths]}"
                        " (never mix SYNTHETIC and real trades, or two copies of a day)"
                    )
        return found

    def _load(self, source: _Source) -> _Trades:
        if not source.synthetic:
            return self._recorded[source.paths]
        (path,) = source.paths
        with self._lock:
            trades = self._synthetic.get(path)
            if trades is not None:
                self._synthetic.move_to_end(path)
                return trades
            if path not in self._warned:
                self._warned.add(path)
                logger.warning(
                    "replay: serving SYNTHETIC Deribit trades from %s: generated data, "
                    "not real market data",
                    path.name,
                )
            trades = _load_synthetic(path, source.first_ms, source.last_ms)
            self._synthetic[path] = trades
            while len(self._synthetic) > self.synthetic_days_cached:
                self._synthetic.popitem(last=False)
            return trades


# -- loading ------------------------------------------------------------------------------


def _load_quantlet(paths: list[Path], currency: str) -> _Trades:
    """The unique trades of the QuantLet CSV files, as Deribit trade objects."""
    by_id: dict[str, dict[str, str]] = {}
    for path in paths:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) != _CSV_COLUMNS:
                raise ValueError(
                    f"{path}: expected columns {_CSV_COLUMNS}, got {reader.fieldnames}"
                )
            for line, row in enumerate(reader, start=2):
                previous = by_id.setdefault(row["trade_id"], row)
                if previous != row:
                    raise ValueError(
                        f"{path}:{line}: trade {row['trade_id']} differs from an earlier copy"
                    )
    rows = []
    for trade_id, row in by_id.items():
        try:
            rows.append((int(trade_id), int(row["t"]), _quantlet_trade(row, currency)))
        except (ValueError, InvalidOperation) as exc:
            raise ValueError(f"{paths}: trade {trade_id!r} cannot be replayed: {exc}") from None
    rows.sort()
    timestamps = [t for _, t, _ in rows]
    if timestamps != sorted(timestamps):
        raise ValueError(f"{paths}: trade id order differs from time order")
    logger.debug("replay: loaded %d unique Deribit trades from %s", len(rows), paths)
    return _Trades(timestamps, [row for _, _, row in rows])


def _quantlet_trade(row: dict[str, str], currency: str) -> str:
    """One QuantLet CSV row as Deribit's JSON trade object (compact, in Deribit's order)."""
    for name in ("t", "trade_seq", "trade_id", "tick_direction"):
        if not _DIGITS.fullmatch(row[name]):
            raise ValueError(f"{name} {row[name]!r} is not an integer")
    if row["s"] != "TRADE":
        raise ValueError(f"s is {row['s']!r}, expected the constant TRADE")
    day = datetime.fromtimestamp(int(row["t"]) / 1000, UTC).date().isoformat()
    if row["d"] != day:
        raise ValueError(f"d {row['d']!r} is not the UTC date of t ({day})")
    if row["direction"] not in ("buy", "sell"):
        raise ValueError(f"direction {row['direction']!r}")
    if not row["instrument_name"].startswith(f"{currency}-"):
        raise ValueError(f"instrument {row['instrument_name']!r} is not a {currency} instrument")
    return (
        f'{{"trade_seq":{int(row["trade_seq"])},"trade_id":{json.dumps(row["trade_id"])},'
        f'"timestamp":{int(row["t"])},"tick_direction":{int(row["tick_direction"])},'
        f'"price":{_json_float(row["p"])},"iv":{_json_float(row["iv"])},'
        f'"instrument_name":{json.dumps(row["instrument_name"])},'
        f'"index_price":{_json_float(row["index_price"])},'
        f'"direction":{json.dumps(row["direction"])},"amount":{_json_float(row["q"])}}}'
    )


def _load_amberdata(path: Path, currency: str) -> _Trades:
    """Amberdata's decorated trades (``payload.data``) as Deribit trade objects."""
    document = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    try:
        records = document["payload"]["data"]
    except (KeyError, TypeError):
        raise ValueError(f"{path}: expected Amberdata's {{'payload': {{'data': [...]}}}}") from None
    rows = []
    seen: set[str] = set()
    for number, record in enumerate(records):
        try:
            trade_id = record["tradeId"]
            if trade_id in seen:
                raise ValueError("trade id seen twice")
            seen.add(trade_id)
            rows.append(
                (record["exchangeTimestamp"], int(trade_id), _amberdata_trade(record, currency))
            )
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            raise ValueError(
                f"{path}: record {number} ({record.get('tradeId')!r}) cannot be replayed: {exc!r}"
            ) from None
    rows.sort()  # Deribit's order: by time, then by trade id
    logger.debug("replay: loaded %d Amberdata-recorded Deribit trades from %s", len(rows), path)
    return _Trades([ts for ts, _, _ in rows], [row for _, _, row in rows])


def _amberdata_trade(record: dict[str, Any], currency: str) -> str:
    """One Amberdata record as Deribit's JSON trade object (compact, Deribit's names)."""
    if record["exchange"] != "deribit" or record["currency"] != currency:
        raise ValueError(f"not a Deribit {currency} trade")
    if not _DIGITS.fullmatch(record["tradeId"]) or type(record["exchangeTimestamp"]) is not int:
        raise ValueError("tradeId must be numeric text and exchangeTimestamp an integer")
    direction = {1: "buy", -1: "sell"}[record["exchangeDirection"]]
    name = record["instrument"]
    if not name.startswith(f"{currency}-"):
        raise ValueError(f"instrument {name!r} is not a {currency} instrument")
    fields = [
        f'"trade_id":{json.dumps(record["tradeId"])}',
        f'"timestamp":{record["exchangeTimestamp"]}',
        f'"tick_direction":{_AMBERDATA_TICKS[record["tickDirection"]]}',
        f'"price":{_json_float(str(record["price"]))}',
        f'"iv":{_json_float(str(record["tradeIv"]))}',
        f'"instrument_name":{json.dumps(name)}',
        f'"index_price":{_json_float(str(record["indexPrice"]))}',
        f'"direction":"{direction}"',
        f'"amount":{_json_float(str(record["tradeAmount"]))}',
    ]
    for source, target in (("blockTradeId", "block_trade_id"), ("liquidation", "liquidation")):
        if record[source] is not None:
            fields.append(f'"{target}":{json.dumps(record[source])}')
    return "{" + ",".join(fields) + "}"


def _json_float(text: str) -> str:
    """The recorded decimal text as a JSON number with a decimal point, value unchanged.

    ``"0.0165"`` stays as is, ``"46786"`` becomes ``46786.0`` (Deribit sends floats) and the
    Java-style ``"5.0E-4"`` becomes ``0.0005``.
    """
    if not _JSON_NUMBER.fullmatch(text):
        value = Decimal(text)  # InvalidOperation for non-numbers
        if not value.is_finite():
            raise ValueError(f"{text!r} is not a finite number")
        text = format(value, "f")
        if "." in text:
            text = text.rstrip("0")
    if "." not in text:
        return text + ".0"
    return text + "0" if text.endswith(".") else text


def _load_synthetic(path: Path, first_ms: int, last_ms: int) -> _Trades:
    """A SYNTHETIC day file: one trade object per line, ascending by trade id and time."""
    timestamps: list[int] = []
    rows: list[str] = []
    last_id = -1
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            text = line.strip()
            if not text:
                continue
            trade = json.loads(text)
            ts, trade_id = _synthetic_keys(trade, path, number)
            if not first_ms <= ts <= last_ms:
                raise ValueError(f"{path}:{number}: timestamp {ts} is outside the file's day")
            if trade_id <= last_id or (timestamps and ts < timestamps[-1]):
                raise ValueError(f"{path}:{number}: trades are not ascending by id and time")
            last_id = trade_id
            timestamps.append(ts)
            rows.append(text)
    logger.debug("replay: loaded %d SYNTHETIC Deribit trades from %s", len(rows), path)
    return _Trades(timestamps, rows)


def _synthetic_keys(trade: Any, path: Path, number: int) -> tuple[int, int]:
    if not isinstance(trade, dict):
        raise ValueError(f"{path}:{number}: expected a JSON object per line")
    ts, trade_id = trade.get("timestamp"), trade.get("trade_id")
    if type(ts) is not int or not isinstance(trade_id, str) or not _DIGITS.fullmatch(trade_id):
        raise ValueError(f"{path}:{number}: needs an int timestamp and a numeric trade_id")
    return ts, int(trade_id)


def _day_start_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)


# -- parameters -----------------------------------------------------------------------------


def _param(query: dict[str, list[str]], name: str, *, required: bool = False) -> str | None:
    values = query.get(name)
    if not values or values == [""]:
        if required:
            raise _invalid(name, "required")
        return None
    if len(values) > 1:
        raise _invalid(name, "given more than once")
    return values[0]


def _int_param(query: dict[str, list[str]], name: str, *, required: bool = False) -> int | None:
    value = _param(query, name, required=required)
    if value is None:
        return None
    if not _INT_PARAM.fullmatch(value):
        raise _invalid(name, "must be a non-negative integer")
    return int(value)


def _error_response(
    err: DeribitError, us_in: int, us_out: int, headers: dict[str, str] | None = None
) -> Response:
    error: dict[str, Any] = {"message": err.message, "code": err.code}
    if err.data is not None:
        error["data"] = err.data
    return Response.json(
        {
            "jsonrpc": "2.0",
            "error": error,
            "usIn": us_in,
            "usOut": us_out,
            "usDiff": us_out - us_in,
            "testnet": False,
        },
        err.status,
        headers,
    )
