"""Data-quality checks over the raw lake tables: pure functions of a pyarrow table.

A raw asset calls these on the table it is about to write (one UTC day of Binance klines,
Hyperliquid candles or funding, or Deribit option trades) and reports the outcomes. Every
check is vectorised with :mod:`pyarrow.compute`; Python only formats the at most
:data:`MAX_EXAMPLES` example problems (and :func:`instrument_names_parse` parses each
*distinct* instrument name once, :func:`expected_candles` walks the expected time grid of
each group with :func:`mkt_platform.lib.gaps.missing_ranges`).

Conventions:

* Times are UTC. Timestamp columns (``timestamp[ms, UTC]`` in every lake schema) are compared
  as epoch milliseconds; an integer time column is taken as epoch milliseconds as is.
* Prices and volumes are compared exactly in their storage type (``decimal128(38, 8)`` in
  the lake schemas), never through floats.
* Each check returns a :class:`CheckOutcome`: ``failures`` counts the rows (or candles or key
  groups, as each check documents) at fault, ``passed`` is ``failures == 0``, ``examples``
  describes at most 10 of them naming their key (``"BTCUSDT 2023-03-24T12:00Z: high 27000.1 <
  open 27100"``), and ``metadata`` holds JSON-serialisable figures (ints, strings, lists and
  dicts of them) ready for Dagster metadata.
* The lake tables' keys: Binance klines (``symbol``, ``open_time``), Hyperliquid candles
  (``coin``, ``open_time``), Hyperliquid funding (``coin``, ``time``), Deribit option trades
  (``trade_id``). Funding rates and premiums may legitimately be negative: do not pass them
  to :func:`non_negative`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from mkt_platform.lib.gaps import format_range, missing_ranges

#: At most this many example problems are described per outcome.
MAX_EXAMPLES = 10

#: Default ``iv_range`` of :func:`option_trades_sane`, percent, both bounds inclusive.
#: Deribit sends ``iv`` in percent (``75.3``). Deribit writes 0 when no volatility reproduces
#: the price (the 2022-01-01 recording has one, an in-the-money put traded below its intrinsic
#: value three minutes before expiry): that is the exchange's real answer, not bad data, so 0
#: passes (the ATM-iv mart leaves such trades out); a negative iv fails. The recording's
#: largest value is 500.0, a minimum-tick (0.0005 BTC) call minutes before expiry, which looks
#: like the pricer's ceiling; 1000 leaves room above that while still catching unit errors
#: (a value in basis points or multiplied by 100 twice, e.g. 5000 or 7530).
DEFAULT_IV_RANGE = (0.0, 1000.0)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class CheckOutcome:
    """The outcome of one check over one table (or, after :func:`merge`, several).

    Attributes:
        name: the check, e.g. ``"no_duplicate_keys"``.
        passed: ``True`` when nothing is at fault (``failures == 0``).
        failures: rows, candles or key groups at fault (each check says which).
        examples: at most :data:`MAX_EXAMPLES` human-readable problems, each naming its key.
        metadata: JSON-serialisable figures about the check (counts, ranges, parameters).
    """

    name: str
    passed: bool
    failures: int
    examples: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


def merge(name: str, outcomes: Mapping[str, CheckOutcome] | Iterable[CheckOutcome]) -> CheckOutcome:
    """Combine the outcomes of the same check over several partitions into one.

    Args:
        name: the check's name; every outcome must carry it.
        outcomes: ``{partition_key: outcome}`` (examples are then prefixed with
            ``"<partition_key>: "``), or a plain iterable of outcomes (keyed ``"0"``, ``"1"``,
            ... in the metadata, examples not prefixed).

    Returns:
        An outcome that passed when every partition passed (and when there are none), with
        the failures summed, the first :data:`MAX_EXAMPLES` examples in partition order, and
        metadata ``{"partitions": n, "failed_partitions": [keys], "per_partition": {key:
        {"passed", "failures", "metadata"}}}``.

    Raises:
        ValueError: an outcome belongs to another check.
    """
    if isinstance(outcomes, Mapping):
        items = [(str(key), outcome, f"{key}: ") for key, outcome in outcomes.items()]
    else:
        items = [(str(index), outcome, "") for index, outcome in enumerate(outcomes)]
    examples: list[str] = []
    per_partition: dict[str, Any] = {}
    for key, outcome, prefix in items:
        if outcome.name != name:
            raise ValueError(
                f"cannot merge outcome of {outcome.name!r} (partition {key}) into {name!r}"
            )
        examples.extend(prefix + e for e in outcome.examples[: MAX_EXAMPLES - len(examples)])
        per_partition[key] = {
            "passed": outcome.passed,
            "failures": outcome.failures,
            "metadata": outcome.metadata,
        }
    failures = sum(outcome.failures for _, outcome, _ in items)
    return CheckOutcome(
        name=name,
        passed=all(outcome.passed for _, outcome, _ in items),
        failures=failures,
        examples=examples,
        metadata={
            "partitions": len(items),
            "failed_partitions": [key for key, outcome, _ in items if not outcome.passed],
            "per_partition": per_partition,
        },
    )


# -- checks ---------------------------------------------------------------------------------


def no_duplicate_keys(table: pa.Table, keys: Sequence[str]) -> CheckOutcome:
    """Every key occurs once.

    Args:
        table: any table holding the ``keys`` columns.
        keys: the key columns, e.g. ``["symbol", "open_time"]`` or ``["trade_id"]``. Null
            key values are grouped together (two rows with the same null key are duplicates).

    Returns:
        Outcome ``no_duplicate_keys``. ``failures`` is the number of distinct keys that occur
        more than once; each example names the key and its row count (``"BTCUSDT
        2023-03-24T12:00Z: 2 rows"``, ``"trade 197400889: 3 rows"``). Metadata: ``keys``,
        ``rows``, ``distinct_keys``, ``duplicated_keys`` and ``surplus_rows`` (rows beyond the
        first of each key).
    """
    name = "no_duplicate_keys"
    keys = list(keys)
    if not keys:
        raise ValueError(f"{name}: at least one key column is required")
    _require(table, keys, name)
    counts = table.select(keys).group_by(keys, use_threads=False).aggregate([([], "count_all")])
    duplicated = counts.filter(pc.greater(counts["count_all"], 1))
    surplus = pc.sum(pc.subtract(duplicated["count_all"], 1)).as_py() or 0
    shown = duplicated.slice(0, MAX_EXAMPLES)
    labels = _labels(shown, keys, range(shown.num_rows))
    examples = [
        f"{label}: {n} rows"
        for label, n in zip(labels, shown["count_all"].to_pylist(), strict=True)
    ]
    return _outcome(
        name,
        duplicated.num_rows,
        examples,
        {
            "keys": keys,
            "rows": table.num_rows,
            "distinct_keys": counts.num_rows,
            "duplicated_keys": duplicated.num_rows,
            "surplus_rows": surplus,
        },
    )


def times_monotonic_and_aligned(
    table: pa.Table,
    group: str | None,
    time_col: str,
    interval_ms: int | None,
    *,
    strict: bool | None = None,
    keys: Sequence[str] | None = None,
) -> CheckOutcome:
    """Within each group, in file order, times increase; and they sit on the interval grid.

    Args:
        table: a table with ``time_col`` (a timestamp, compared in UTC milliseconds, or an
            integer of epoch milliseconds) and, if given, the ``group`` column.
        group: the column whose values are checked separately (``symbol``, ``coin``), each
            group's rows in their file order; ``None`` checks the whole table as one sequence.
            For Deribit trades of several currencies (written currency after currency) use
            ``instrument_name``: each currency starts over in time.
        time_col: the time column, e.g. ``open_time``, ``time`` or ``timestamp``.
        interval_ms: candle length in milliseconds: every time must be a multiple of it
            (counted from the UTC epoch; 1h candles open on the hour). ``None`` skips the
            alignment check (trades; Hyperliquid funding, whose times carry a few milliseconds
            of jitter).
        strict: ``True`` requires strictly increasing times (candles, funding: a repeated time
            is a duplicate), ``False`` only non-decreasing ones. Default: strict when
            ``interval_ms`` is set, non-decreasing otherwise, because trades (Deribit's
            included) can share a millisecond.
        keys: columns naming a row in the examples; default ``symbol``/``coin`` and
            ``open_time``/``time``/``timestamp``, or ``trade_id`` (whichever exist; the time
            is added when it is not among them).

    Returns:
        Outcome ``times_monotonic_and_aligned``. ``failures`` counts rows at fault: a row whose
        time is not after (strict) / is before (non-strict) the previous row of its group, a
        row off the interval grid, or a row with a null time (a null time is not compared with
        its neighbours). Examples name the row by ``keys`` (plus its time) and its position
        in the file (``"BTCUSDT 2023-03-24T12:00Z (row 13): not after the previous time
        2023-03-24T13:00Z"``). Metadata:
        ``group``, ``time_col``, ``interval_ms``, ``strict``, ``rows``, ``out_of_order``,
        ``misaligned``, ``null_times``.
    """
    name = "times_monotonic_and_aligned"
    _require(table, [time_col] if group is None else [group, time_col], name)
    if interval_ms is not None and interval_ms <= 0:
        raise ValueError(f"{name}: interval_ms must be positive, got {interval_ms}")
    strict = interval_ms is not None if strict is None else strict
    keys = (_default_keys(table) or [time_col]) if keys is None else list(keys)
    _require(table, keys, name)
    n = table.num_rows
    times = _epoch_ms(table[time_col])
    if group is None:
        order = None
        groups = None
        sorted_times = times
    else:
        # sort_indices is stable: rows of a group stay in their file order.
        order = pc.sort_indices(table.select([group]), sort_keys=[(group, "ascending")])
        groups = _flat(table[group]).take(order)
        sorted_times = times.take(order)

    if n > 1:
        previous, current = sorted_times.slice(0, n - 1), sorted_times.slice(1)
        behind = pc.less_equal(current, previous) if strict else pc.less(current, previous)
        if groups is not None:
            behind = pc.and_(behind, _same(groups.slice(1), groups.slice(0, n - 1)))
        out_of_order = pa.concat_arrays([pa.array([False]), pc.fill_null(behind, False)])
    else:
        out_of_order = pa.repeat(pa.scalar(False), n)
    if interval_ms is None:
        misaligned = pa.repeat(pa.scalar(False), n)
    else:
        misaligned = pc.fill_null(pc.not_equal(pc.modulo(sorted_times, interval_ms), 0), False)
    null_times = pc.is_null(sorted_times)
    fault = pc.or_(pc.or_(out_of_order, misaligned), null_times)

    examples = []
    indices = _first_indices(fault)
    rows = [i if order is None else order[i].as_py() for i in indices]
    for i, row, label in zip(indices, rows, _labels(table, keys, rows), strict=True):
        time = sorted_times[i].as_py()
        problems = []
        if time is None:
            problems.append("null time")
        if out_of_order[i].as_py():
            relation = "not after" if strict else "before"
            problems.append(
                f"{relation} the previous time {_ms_label(sorted_times[i - 1].as_py())}"
            )
        if misaligned[i].as_py():
            problems.append(f"not on the {_duration(interval_ms)} grid")
        if time_col not in keys:
            label += " at " + ("null" if time is None else _ms_label(time))
        examples.append(f"{label} (row {row}): {', '.join(problems)}")
    return _outcome(
        name,
        _count(fault),
        examples,
        {
            "group": group,
            "time_col": time_col,
            "interval_ms": interval_ms,
            "strict": strict,
            "rows": n,
            "out_of_order": _count(out_of_order),
            "misaligned": _count(misaligned),
            "null_times": _count(null_times),
        },
    )


def ohlc_sane(
    table: pa.Table,
    open: str = "open",
    high: str = "high",
    low: str = "low",
    close: str = "close",
    *,
    keys: Sequence[str] | None = None,
) -> CheckOutcome:
    """Candle prices are positive and consistent: low <= open, close <= high.

    Args:
        table: candles with the four price columns (``decimal128(38, 8)`` in the lake, in the
            quote currency; compared exactly).
        open, high, low, close: the price column names.
        keys: columns naming a row in the examples; default ``symbol``/``coin`` and
            ``open_time``/``time``/``timestamp`` (whichever exist).

    Returns:
        Outcome ``ohlc_sane``. ``failures`` counts candles with a null price, a price <= 0,
        ``high < open``, ``high < close``, ``low > open``, ``low > close`` or ``low > high``.
        Each example lists the violated relations with the values (``"BTCUSDT
        2023-03-24T12:00Z: high 27000.1 < open 27100"``). Metadata: ``rows`` and the number of
        rows breaking each rule (``null_price``, ``non_positive_price``, ``high_below_open``,
        ``high_below_close``, ``low_above_open``, ``low_above_close``, ``low_above_high``).
    """
    name = "ohlc_sane"
    columns = {"open": open, "high": high, "low": low, "close": close}
    _require(table, list(columns.values()), name)
    keys = _default_keys(table) if keys is None else list(keys)
    _require(table, keys, name)
    o, h, lo, c = (table[col] for col in (open, high, low, close))

    rules: dict[str, tuple[Any, Any]] = {
        "null_price": (_any(pc.is_null(x) for x in (o, h, lo, c)), None),
        "non_positive_price": (
            _any(pc.fill_null(pc.less_equal(x, 0), False) for x in (o, h, lo, c)),
            None,
        ),
        "high_below_open": (pc.less(h, o), (high, "<", open)),
        "high_below_close": (pc.less(h, c), (high, "<", close)),
        "low_above_open": (pc.greater(lo, o), (low, ">", open)),
        "low_above_close": (pc.greater(lo, c), (low, ">", close)),
        "low_above_high": (pc.greater(lo, h), (low, ">", high)),
    }
    masks = {rule: _flat(pc.fill_null(mask, False)) for rule, (mask, _) in rules.items()}
    fault = _any(masks.values())

    examples = []
    indices = _first_indices(fault)
    if indices:
        labels = _labels(table, keys, indices)
        prices = table.select(list(dict.fromkeys(columns.values()))).take(indices).to_pylist()
        for label, i, row in zip(labels, indices, prices, strict=True):
            problems = []
            if masks["null_price"][i].as_py():
                nulls = [col for col in columns.values() if row[col] is None]
                problems.append(f"null {', '.join(dict.fromkeys(nulls))}")
            if masks["non_positive_price"][i].as_py():
                problems.extend(
                    f"{col} {_fmt(row[col])} <= 0"
                    for col in dict.fromkeys(columns.values())
                    if row[col] is not None and row[col] <= 0
                )
            for rule, (_, relation) in rules.items():
                if relation is not None and masks[rule][i].as_py():
                    left, op, right = relation
                    problems.append(f"{left} {_fmt(row[left])} {op} {right} {_fmt(row[right])}")
            examples.append(f"{label}: {'; '.join(problems)}")
    metadata: dict[str, Any] = {"rows": table.num_rows}
    metadata.update({rule: _count(mask) for rule, mask in masks.items()})
    return _outcome(name, _count(fault), examples, metadata)


def non_negative(
    table: pa.Table, columns: Sequence[str], *, keys: Sequence[str] | None = None
) -> CheckOutcome:
    """The given columns hold no negative values (volumes, trade counts).

    Nulls are allowed: Binance 1m klines replayed from freqtrade's recording legitimately have
    NULL ``quote_volume``, ``trades`` and taker volumes. Do not pass funding rates or premiums,
    which are negative whenever shorts pay longs.

    Args:
        table: a table with ``columns`` (decimal, integer or floating point).
        columns: the columns to check, e.g. ``["volume", "quote_volume", "trades"]``.
        keys: columns naming a row in the examples; default ``symbol``/``coin`` and
            ``open_time``/``time``/``timestamp``, or ``trade_id`` (whichever exist).

    Returns:
        Outcome ``non_negative``. ``failures`` counts rows with a value < 0 (or NaN, in a
        floating-point column) in any of the columns; examples name the row, the column and
        the value (``"BTCUSDT 2023-03-24T12:00Z: volume -1.5 < 0"``). Metadata: ``columns``,
        ``rows``, and per column ``negative``, ``nan`` and ``nulls`` (allowed, for information).
    """
    name = "non_negative"
    columns = list(columns)
    _require(table, columns, name)
    keys = _default_keys(table) if keys is None else list(keys)
    _require(table, keys, name)
    negative, nan = {}, {}
    for col in columns:
        negative[col] = _flat(pc.fill_null(pc.less(table[col], 0), False))
        if pa.types.is_floating(table[col].type):
            nan[col] = _flat(pc.fill_null(pc.is_nan(table[col]), False))
    fault = _any([*negative.values(), *nan.values()])

    examples = []
    indices = _first_indices(fault)
    if indices:
        labels = _labels(table, keys, indices)
        values = table.select(columns).take(indices).to_pylist()
        for label, i, row in zip(labels, indices, values, strict=True):
            problems = [
                f"{col} {_fmt(row[col])} < 0" if negative[col][i].as_py() else f"{col} is NaN"
                for col in columns
                if negative[col][i].as_py() or (col in nan and nan[col][i].as_py())
            ]
            examples.append(f"{label}: {'; '.join(problems)}")
    return _outcome(
        name,
        _count(fault),
        examples,
        {
            "columns": columns,
            "rows": table.num_rows,
            "negative": {col: _count(mask) for col, mask in negative.items()},
            "nan": {col: _count(mask) for col, mask in nan.items()},
            "nulls": {col: table[col].null_count for col in columns},
        },
    )


def expected_candles(
    table: pa.Table,
    group: str,
    time_col: str,
    groups: Iterable[str],
    start_ms: int,
    end_ms: int,
    interval_ms: int,
    known_gaps: Mapping[str, Sequence[str]] | None = None,
) -> CheckOutcome:
    """Each group has every candle of the window, except the exchange's own known gaps.

    The expected candles of a group open at ``start_ms, start_ms + interval_ms, ...`` up to
    (excluding) ``end_ms``, all UTC milliseconds: ``ceil((end_ms - start_ms) / interval_ms)``
    of them (24 for a UTC day of 1h candles, 1440 of 1m).

    Args:
        table: candles with the ``group`` and ``time_col`` columns.
        group: the group column, e.g. ``symbol`` or ``coin``.
        time_col: the open-time column (timestamp, or integer epoch milliseconds).
        groups: the groups that were pulled; a group without any row is entirely missing.
        start_ms, end_ms: the window, UTC milliseconds, ``[start_ms, end_ms)``.
        interval_ms: candle length in milliseconds.
        known_gaps: per group, missing ranges already confirmed as the exchange's own (no
            candles exist, e.g. Binance's spot halt of 2023-03-24, ``{"BTCUSDT":
            ["12:40-13:59"]}`` in 1m klines), written as :func:`mkt_platform.lib.gaps.
            format_range` writes them. A missing range matches only when its text is
            identical; a wider or narrower gap is not known.

    Returns:
        Outcome ``expected_candles``. ``failures`` = missing candles outside the known gaps +
        rows that are not expected candles (another group, outside the window, off the grid
        or with a null time or group). Duplicated candles are not counted here (see
        :func:`no_duplicate_keys`). Examples name the group and range (``"BTCUSDT 2023-03-24:
        missing 12:40-13:59 (80 candles)"``) or the unexpected row. Metadata: ``expected``
        (candles per group), ``actual`` (distinct expected candles present, per group),
        ``missing`` (all missing ranges per group that has any, known gaps included),
        ``known_gaps`` (the missing ranges that are known, per group), ``missing_candles``
        (outside known gaps), ``unexpected_rows``, ``start``, ``end``, ``interval_ms``.
    """
    name = "expected_candles"
    _require(table, [group, time_col], name)
    if interval_ms <= 0:
        raise ValueError(f"{name}: interval_ms must be positive, got {interval_ms}")
    if end_ms < start_ms:
        raise ValueError(f"{name}: end_ms {end_ms} is before start_ms {start_ms}")
    groups = list(dict.fromkeys(groups))
    known_gaps = known_gaps or {}
    expected = len(range(start_ms, end_ms, interval_ms))

    times = _epoch_ms(table[time_col])
    names = _flat(table[group])
    in_window = pc.and_(pc.greater_equal(times, start_ms), pc.less(times, end_ms))
    on_grid = pc.equal(pc.modulo(pc.subtract(times, start_ms), interval_ms), 0)
    listed = pc.is_in(names, value_set=pa.array(groups, names.type))
    is_expected = pc.fill_null(pc.and_(pc.and_(in_window, on_grid), listed), False)
    unexpected = pc.invert(is_expected)

    present = (
        pa.table({"g": names, "t": times})
        .filter(is_expected)
        .group_by(["g", "t"], use_threads=False)
        .aggregate([])
    )
    actual: dict[str, int] = {}
    missing: dict[str, list[str]] = {}
    known: dict[str, list[str]] = {}
    missing_candles = 0
    examples: list[str] = []
    for g in groups:
        opens = set(present["t"].filter(pc.equal(present["g"], g)).to_pylist())
        actual[g] = len(opens)
        ranges = missing_ranges(opens, start_ms, end_ms, interval_ms)
        if not ranges:
            continue
        texts = [format_range(first, last) for first, last in ranges]
        missing[g] = texts
        confirmed = [text for text in texts if text in set(known_gaps.get(g, ()))]
        if confirmed:
            known[g] = confirmed
        for (first, last), text in zip(ranges, texts, strict=True):
            if text in confirmed:
                continue
            candles = (last - first) // interval_ms + 1
            missing_candles += candles
            if len(examples) < MAX_EXAMPLES:
                day = _ms_datetime(first).strftime("%Y-%m-%d")
                plural = "candle" if candles == 1 else "candles"
                examples.append(f"{g} {day}: missing {text} ({candles} {plural})")

    unexpected_indices = _first_indices(unexpected, MAX_EXAMPLES - len(examples))
    for i in unexpected_indices:
        g, t = names[i].as_py(), times[i].as_py()
        if t is None or g is None:
            why = "null time or group"
        elif g not in groups:
            why = f"{group} not among the expected {groups}"
        elif not (start_ms <= t < end_ms):
            why = f"outside {_ms_label(start_ms)}..{_ms_label(end_ms)}"
        else:
            why = f"not on the {_duration(interval_ms)} grid from {_ms_label(start_ms)}"
        time_text = "null" if t is None else _ms_label(t)
        examples.append(f"{g} {time_text} (row {i}): unexpected, {why}")
    unexpected_rows = _count(unexpected)
    return _outcome(
        name,
        missing_candles + unexpected_rows,
        examples,
        {
            "expected": expected,
            "actual": actual,
            "missing": missing,
            "known_gaps": known,
            "missing_candles": missing_candles,
            "unexpected_rows": unexpected_rows,
            "start": _ms_label(start_ms),
            "end": _ms_label(end_ms),
            "interval_ms": interval_ms,
        },
    )


def option_trades_sane(
    table: pa.Table,
    iv_range: tuple[float, float] = DEFAULT_IV_RANGE,
) -> CheckOutcome:
    """Deribit option trades have a positive price and amount and a plausible iv.

    Args:
        table: trades with ``trade_id``, ``instrument_name``, ``price`` (BTC per contract),
            ``amount`` (contracts) and ``iv`` (percent, nullable) as in
            ``OPTION_TRADE_LAKE_SCHEMA``.
        iv_range: ``(lower, upper)`` in percent; a non-null iv must satisfy ``lower <= iv <=
            upper``. Default :data:`DEFAULT_IV_RANGE` = [0, 1000]: see there for why.

    Returns:
        Outcome ``option_trades_sane``. ``failures`` counts trades with a null or
        non-positive price, a null or non-positive amount, or an iv outside the range (or
        NaN); a null iv is allowed (Deribit may omit it). Examples name the trade id and
        instrument (``"trade 197414313 BTC-1JAN22-49000-P: iv -1 not in [0, 1000]"``).
        Metadata: ``rows``, ``iv_range``, ``non_positive_price``, ``non_positive_amount``,
        ``iv_out_of_range``, ``iv_null``.
    """
    name = "option_trades_sane"
    _require(table, ["trade_id", "instrument_name", "price", "amount", "iv"], name)
    lower, upper = iv_range
    if not lower < upper:
        raise ValueError(f"{name}: iv_range {iv_range} is empty")
    bad_price = _flat(pc.fill_null(pc.less_equal(table["price"], 0), True))
    bad_amount = _flat(pc.fill_null(pc.less_equal(table["amount"], 0), True))
    iv = pc.cast(table["iv"], pa.float64())
    outside = pc.or_(pc.less(iv, lower), pc.greater(iv, upper))
    bad_iv = _flat(pc.fill_null(pc.or_(outside, pc.is_nan(iv)), False))
    fault = _any([bad_price, bad_amount, bad_iv])

    examples = []
    indices = _first_indices(fault)
    if indices:
        rows = table.select(["trade_id", "instrument_name", "price", "amount", "iv"])
        for i, row in zip(indices, rows.take(indices).to_pylist(), strict=True):
            problems = []
            if bad_price[i].as_py():
                problems.append(f"price {_fmt(row['price'])} <= 0")
            if bad_amount[i].as_py():
                problems.append(f"amount {_fmt(row['amount'])} <= 0")
            if bad_iv[i].as_py():
                problems.append(f"iv {_fmt(row['iv'])} not in [{_fmt(lower)}, {_fmt(upper)}]")
            examples.append(
                f"trade {row['trade_id']} {_fmt(row['instrument_name'])}: {'; '.join(problems)}"
            )
    return _outcome(
        name,
        _count(fault),
        examples,
        {
            "rows": table.num_rows,
            "iv_range": [lower, upper],
            "non_positive_price": _count(bad_price),
            "non_positive_amount": _count(bad_amount),
            "iv_out_of_range": _count(bad_iv),
            "iv_null": table["iv"].null_count,
        },
    )


def instrument_names_parse(table: pa.Table, parse: Callable[[Any], Any]) -> CheckOutcome:
    """Every trade's instrument name parses as an option and agrees with the stored columns.

    Each distinct ``instrument_name`` is parsed once with ``parse``, the venue's parser
    (Deribit: :func:`mkt_platform.defs.deribit.instruments.parse_instrument_name`), which
    returns an object with ``expiry``, ``strike`` and ``option_type`` or raises
    ``ValueError`` (its ``reason`` attribute, or its message, says why); the parsed expiry
    (08:00 UTC on the expiry date), strike (USD, exact) and option type (``C``/``P``) are then
    compared with the ``expiry``, ``strike`` and ``option_type`` columns of every row.

    Args:
        table: trades with ``trade_id``, ``instrument_name``, ``expiry``, ``strike`` and
            ``option_type`` as in ``OPTION_TRADE_LAKE_SCHEMA``.

    Returns:
        Outcome ``instrument_names_parse``. ``failures`` counts trades whose name does not
        parse (a perpetual, a future, a malformed name, null) or whose expiry, strike or option
        type differs from the name's (a null stored value differs). Examples name the trade,
        the instrument and the reason (``"trade 1 BTC-PERPETUAL: does not parse (a perpetual,
        not an option)"``, ``"trade 2 BTC-1JAN22-47000-C: strike 48000 != 47000 from the
        name"``). Metadata: ``rows``, ``distinct_names``, ``unparseable_names`` (count),
        ``unparseable`` (up to 10 ``{name: reason}``), ``mismatched`` (rows per column).
    """
    name = "instrument_names_parse"
    stored = ("expiry", "strike", "option_type")
    _require(table, ["trade_id", "instrument_name", *stored], name)
    names = _flat(table["instrument_name"])
    distinct = pc.unique(names)
    parsed: list[Any] = []
    reasons: dict[str, str] = {}
    for instrument in distinct.to_pylist():  # once per distinct name, not per row
        try:
            parsed.append(parse(instrument))
        except ValueError as exc:
            parsed.append(None)
            reasons[str(instrument)] = getattr(exc, "reason", str(exc))
    by_name = {
        "ok": pa.array([p is not None for p in parsed], pa.bool_()),
        "expiry": pa.array([p and p.expiry for p in parsed], table["expiry"].type),
        "strike": pa.array([p and p.strike for p in parsed], table["strike"].type),
        "option_type": pa.array([p and p.option_type for p in parsed], table["option_type"].type),
    }
    position = pc.index_in(names, value_set=distinct)
    ok = pc.fill_null(by_name["ok"].take(position), False)
    unparsed = pc.invert(ok)
    expected = {col: by_name[col].take(position) for col in stored}
    mismatched = {
        col: pc.and_(ok, pc.invert(pc.fill_null(pc.equal(_flat(table[col]), expected[col]), False)))
        for col in stored
    }
    fault = _any([unparsed, *mismatched.values()])

    examples = []
    indices = _first_indices(fault)
    if indices:
        rows = table.select(["trade_id", "instrument_name", *stored]).take(indices).to_pylist()
        for i, row in zip(indices, rows, strict=True):
            where = f"trade {row['trade_id']} {_fmt(row['instrument_name'])}"
            if unparsed[i].as_py():
                reason = reasons.get(str(row["instrument_name"]), "not a string")
                examples.append(f"{where}: does not parse ({reason})")
                continue
            problems = [
                f"{col} {_fmt(row[col])} != {_fmt(expected[col][i].as_py())} from the name"
                for col in stored
                if mismatched[col][i].as_py()
            ]
            examples.append(f"{where}: {'; '.join(problems)}")
    return _outcome(
        name,
        _count(fault),
        examples,
        {
            "rows": table.num_rows,
            "distinct_names": len(distinct),
            "unparseable_names": len(reasons),
            "unparseable": dict(list(reasons.items())[:MAX_EXAMPLES]),
            "mismatched": {col: _count(mask) for col, mask in mismatched.items()},
        },
    )


# -- helpers --------------------------------------------------------------------------------


def _outcome(name: str, failures: int, examples: list[str], metadata: dict) -> CheckOutcome:
    return CheckOutcome(name, failures == 0, failures, examples[:MAX_EXAMPLES], metadata)


def _require(table: pa.Table, columns: Iterable[str], check: str) -> None:
    absent = [c for c in columns if c not in table.column_names]
    if absent:
        raise KeyError(f"{check}: the table has no column(s) {absent} (has {table.column_names})")


def _flat(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _epoch_ms(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Times as int64 UTC epoch milliseconds (a timestamp of another unit is converted
    exactly; an integer column is taken as milliseconds)."""
    values = _flat(values)
    if pa.types.is_timestamp(values.type):
        values = values.cast(pa.timestamp("ms", values.type.tz))
    return values.cast(pa.int64())


def _same(a: pa.Array, b: pa.Array) -> pa.Array:
    """Element-wise equality with null equal to null."""
    both_null = pc.and_(pc.is_null(a), pc.is_null(b))
    return pc.fill_null(pc.equal(a, b), both_null)


def _any(masks: Iterable[Any]) -> pa.Array:
    result = None
    for mask in masks:
        result = mask if result is None else pc.or_(result, mask)
    return _flat(result)


def _count(mask: pa.Array | pa.ChunkedArray) -> int:
    return int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)


def _first_indices(mask: pa.Array, limit: int = MAX_EXAMPLES) -> list[int]:
    if limit <= 0:
        return []
    return pc.indices_nonzero(_flat(mask)).slice(0, limit).to_pylist()


def _default_keys(table: pa.Table) -> list[str]:
    names = table.column_names
    if "trade_id" in names:
        return ["trade_id"]
    group = next((c for c in ("symbol", "coin") if c in names), None)
    time = next((c for c in ("open_time", "time", "timestamp") if c in names), None)
    return [c for c in (group, time) if c is not None]


def _labels(table: pa.Table, keys: Sequence[str], indices: Iterable[int]) -> list[str]:
    indices = list(indices)
    if not keys:
        return [f"row {i}" for i in indices]
    rows = table.select(list(keys)).take(pa.array(indices, pa.int64())).to_pylist()
    prefix = "trade " if list(keys) == ["trade_id"] else ""
    return [prefix + " ".join(_fmt(row[k]) for k in keys) for row in rows]


def _fmt(value: Any) -> str:
    """A value as an example shows it: decimals without trailing zeros, times in ISO UTC."""
    if value is None:
        return "null"
    if isinstance(value, datetime):
        return _time_label(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e16 else repr(value)
    return str(value)


def _time_label(moment: datetime) -> str:
    """``2023-03-24T12:00Z``, with seconds and milliseconds only when they are not zero."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment
    if moment.second == 0 and moment.microsecond == 0:
        return moment.strftime("%Y-%m-%dT%H:%MZ")
    if moment.microsecond == 0:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    fraction = f"{moment.microsecond:06d}"
    fraction = fraction[:3] if fraction.endswith("000") else fraction
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + fraction + "Z"


def _ms_datetime(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _ms_label(ms: int) -> str:
    return _time_label(_ms_datetime(ms))


def _duration(interval_ms: int | None) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if interval_ms and interval_ms % size == 0:
            return f"{interval_ms // size}{unit}"
    return f"{interval_ms}ms"
