"""What every raw asset reports about a partition it writes, whatever the exchange.

* :func:`column_schema`: the ``dagster/column_schema`` of the written file, so Dagster's column
  schema change checks compare one materialization with the previous one.
* :func:`change_summary_tables`: what a re-pull changed compared with the file it replaces (rows
  added, removed and changed, and the time range they span): the late-data sensor's runs
  show it in their metadata.
* :func:`write_partition` / :func:`partition_written`: the one write path to the lake (a
  whole partition replaced atomically, or a streamed one), and the metadata every write
  reports (path, size, content hash, row count, column schema, change).
* :func:`contract_failure`: the ``dg.Failure`` of a pull whose payload broke its contract,
  naming the asset, the partitions, the dataset, the field, what was expected and observed,
  and where the payload was quarantined.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from mkt_platform import settings
from mkt_platform.lib import lake, quarantine
from mkt_platform.lib.contracts import ContractViolation
from mkt_platform.lib.instruments import instruments_file


def column_schema(
    schema: pa.Schema, descriptions: Mapping[str, str] | None = None
) -> dg.TableSchema:
    """A Dagster column schema from an Arrow schema: names, Arrow types, and descriptions
    (with units) where given."""
    descriptions = descriptions or {}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                field.name,
                str(field.type),
                descriptions.get(field.name),
                constraints=dg.TableColumnConstraints(nullable=field.nullable),
            )
            for field in schema
        ]
    )


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def change_summary_tables(
    old: pa.Table | None, new: pa.Table, keys: Sequence[str], time_column: str
) -> dict[str, Any]:
    """How ``new`` differs from ``old`` (``None`` for a first pull), matched on ``keys``.

    Returns:
        ``{"previous_rows", "rows", "rows_added", "rows_removed", "rows_changed",
        "first_changed", "last_changed"}``: counts of keys only in the new table, only in the
        old file, and in both with any other column different (NULL equals NULL), and the
        earliest and latest ``time_column`` value (ISO-8601 UTC) among those rows, or
        ``None`` when nothing changed. With no ``old`` every row counts as added.
    """
    if old is None:
        old = new.schema.empty_table()
    if old.schema.names != new.schema.names:
        # A schema change: compare on the columns both have.
        common = [name for name in new.schema.names if name in old.schema.names]
        old, new = old.select(common), new.select(common)
    new_i = new.append_column("__new", pa.array(range(new.num_rows), pa.int64()))
    old_i = old.append_column("__old", pa.array(range(old.num_rows), pa.int64()))
    joined = new_i.select([*keys, "__new"]).join(
        old_i.select([*keys, "__old"]), keys=list(keys), join_type="full outer"
    )
    new_idx, old_idx = joined["__new"], joined["__old"]
    added = pc.and_(pc.is_valid(new_idx), pc.is_null(old_idx))
    removed = pc.and_(pc.is_null(new_idx), pc.is_valid(old_idx))
    both = joined.filter(pc.and_(pc.is_valid(new_idx), pc.is_valid(old_idx)))
    changed = pa.array([False] * both.num_rows, pa.bool_())
    for name in new.schema.names:
        if name in keys:
            continue
        a = new[name].take(both["__new"])
        b = old[name].take(both["__old"])
        same = pc.or_kleene(
            pc.fill_null(pc.equal(a, b), False), pc.and_(pc.is_null(a), pc.is_null(b))
        )
        changed = pc.or_(changed, pc.invert(same))
    times = []
    for table, idx in (
        (new, joined.filter(added)["__new"]),
        (old, joined.filter(removed)["__old"]),
        (new, both.filter(changed)["__new"]),
    ):
        if len(idx):
            times.append(table[time_column].take(idx))
    all_times = pa.chunked_array(
        [c for t in times for c in t.chunks], type=new.schema.field(time_column).type
    )
    return {
        "previous_rows": old.num_rows,
        "rows": new.num_rows,
        "rows_added": pc.sum(added).as_py() or 0,
        "rows_removed": pc.sum(removed).as_py() or 0,
        "rows_changed": pc.sum(changed).as_py() or 0,
        "first_changed": _iso(pc.min(all_times).as_py()) if len(all_times) else None,
        "last_changed": _iso(pc.max(all_times).as_py()) if len(all_times) else None,
    }


#: One UTC day, milliseconds.
DAY_MS = 86_400_000


def split_days(
    rows: pa.Table, time_column: str, partition_keys: Sequence[str], sort_by: Sequence[str] = ()
) -> dict[str, pa.Table]:
    """The rows of each UTC day partition (``YYYY-MM-DD``) by ``time_column``: every key
    present, an empty table for a day with no row; sorted on ``sort_by`` (ascending), else in
    ``rows``' order. What a pull of many days writes to each partition."""
    times = pc.cast(rows[time_column], pa.int64())
    days = {}
    for partition_key in partition_keys:
        start = int(datetime.fromisoformat(partition_key).replace(tzinfo=UTC).timestamp() * 1000)
        day = rows.filter(pc.and_(pc.greater_equal(times, start), pc.less(times, start + DAY_MS)))
        days[partition_key] = day.sort_by([(c, "ascending") for c in sort_by]) if sort_by else day
    return days


def partition_written(
    path: lake.LakePath,
    previous: pa.Table | None,
    written: pa.Table,
    size: int,
    keys: Sequence[str] | None,
    time_column: str | None,
    descriptions: Mapping[str, str] | None,
    content_hash: str | None = None,
) -> dict[str, Any]:
    """The metadata every raw partition write reports, whole or streamed.

    Args:
        path: the partition file now in the lake.
        previous: the file's table before the write (``None`` for a first pull).
        written: the table now in the file.
        size: the file's size, bytes.
        keys, time_column: the row key and time column :func:`change_summary_tables`
            compares on; no ``change`` entry when ``None`` (a snapshot appends).
        descriptions: column descriptions, with units, for ``dagster/column_schema``.
        content_hash: the table's hash when the writer computed it (a streamed write);
            computed from ``written`` otherwise.

    Returns:
        ``path``, ``file_bytes``, ``content_hash``, ``dagster/row_count``,
        ``dagster/column_schema`` and, with ``keys``, ``change``.
    """
    metadata: dict[str, Any] = {
        "path": dg.MetadataValue.path(str(path)),
        "file_bytes": size,
        "content_hash": content_hash or lake.content_hash(written),
        "dagster/row_count": written.num_rows,
        "dagster/column_schema": column_schema(written.schema, descriptions),
    }
    if keys and time_column:
        metadata["change"] = dg.MetadataValue.json(
            change_summary_tables(previous, written, keys, time_column)
        )
    return metadata


def write_partition(
    path: lake.LakePath,
    table: pa.Table,
    keys: Sequence[str] | None,
    time_column: str | None,
    descriptions: Mapping[str, str] | None,
    content_hash: str | None = None,
) -> dict[str, Any]:
    """Write a whole partition atomically (the file is replaced, or left as it was) and
    return its metadata (:func:`partition_written`); the streamed path is
    :class:`lake.StreamingPartitionWriter`, reported the same way."""
    previous = lake.read_table(path) if path.exists() else None
    size = lake.write_parquet_atomic(table, path)
    return partition_written(
        path, previous, table, size, keys, time_column, descriptions, content_hash
    )


def snapshot_moment(context: dg.AssetExecutionContext, no_history: str) -> tuple[datetime, str]:
    """The moment of a snapshot of the present and its partition (today, UTC).

    Args:
        no_history: why only today can be taken, e.g. ``"Binance keeps no history of its
            order books"``.

    Raises:
        dagster.Failure: the run is for another partition: a snapshot of the present cannot
            be back-filled, and nothing is invented for a past day.
    """
    now = settings.utcnow()
    today = now.strftime("%Y-%m-%d")
    # A backfill's run may cover several days (the raw assets' policy, which a snapshot
    # shares with the pulls of its refresh job): name them all.
    keys = context.partition_keys
    if keys != [today]:
        span = keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]} ({len(keys)} days)"
        raise dg.Failure(
            f"{context.asset_key.to_user_string()} partition {span}: "
            f"{no_history}, so only today's partition ({today} UTC) can be snapshotted, alone; "
            "past days are never back-filled with invented values"
        )
    return now, today


def append_snapshot(
    path: lake.LakePath,
    snapshot: pa.Table,
    sort_by: Sequence[str | tuple[str, str]],
    descriptions: Mapping[str, str] | None = None,
) -> tuple[pa.Table, dict[str, Any]]:
    """Append ``snapshot`` to the day's partition file at ``path`` (created if missing),
    sorted by ``sort_by``, atomically (:func:`write_partition`).

    Returns:
        The day's table as written, and the partition's metadata.
    """
    day = pa.concat_tables([lake.read_table(path), snapshot]) if path.exists() else snapshot
    day = day.sort_by([(c, "ascending") if isinstance(c, str) else c for c in sort_by])
    return day, write_partition(path, day, None, None, descriptions)


def contract_failure(
    exc: ContractViolation, asset_key: str, partition_keys: Sequence[str]
) -> dg.Failure:
    """The failure of a pull whose payload broke its contract (nothing was written).

    Records the asset and partitions beside the quarantined payload, and returns a
    ``dg.Failure`` whose description names them, the dataset, the field, the expected and
    observed values, and the quarantine path (also in its metadata).
    """
    quarantine.annotate(exc, asset_key, partition_keys)
    path = getattr(exc, "quarantine_path", None)
    partitions = (
        partition_keys[0]
        if len(partition_keys) == 1
        else f"{partition_keys[0]}..{partition_keys[-1]}"
    )
    metadata: dict[str, Any] = {
        "kind": exc.kind,
        "dataset": exc.dataset,
        "field": exc.field or "(payload)",
        "expected": exc.expected,
        "observed": exc.observed,
        "source": exc.source,
    }
    if path is not None:
        metadata["quarantined_payload"] = dg.MetadataValue.path(str(path))
    return dg.Failure(
        description=(
            f"{asset_key} partition {partitions}: "
            + ("malformed response" if exc.kind == "malformed" else "schema drift")
            + f", nothing written. {exc}"
            + (f" Payload quarantined at {path}." if path is not None else "")
        ),
        metadata=metadata,
    )


def refuse_universe_shrink(
    asset_key: str,
    paths: Mapping[str, lake.LakePath],
    column: str | Sequence[str],
    universe: Sequence[str],
    instrument_of: Callable[[str], str] | None = None,
) -> None:
    """Refuse to re-pull partitions whose files hold instruments the universe no longer lists.

    A re-pull overwrites a partition with what the current universe pulls: an instruments
    file that lost lines (a misspelled key, a bad merge) would otherwise replace every
    partition of the range with fewer instruments, silently. Called before anything is pulled.

    Args:
        asset_key: the raw asset, for the message.
        paths: each partition key's Parquet file (missing files are skipped).
        column: the file's instrument column (``symbol``, ``coin``, ``instrument_name``), or
            several columns whose values, joined by a space, name a series (DVOL's
            ``currency`` and ``resolution``: ``BTC 3600``).
        universe: the instruments (or series) the asset pulls now.
        instrument_of: maps a column value to a universe entry (Deribit: option name to
            currency); identity when ``None``.

    Raises:
        dagster.Failure: a partition holds an instrument outside ``universe`` and
            ``MKT_ALLOW_UNIVERSE_SHRINK`` is not ``1``; names the asset, the partitions, the
            instruments, the instruments file, and how to force the re-pull.
    """
    if settings.allow_universe_shrink():
        return
    dropped: dict[str, list[str]] = {}
    for partition_key, path in paths.items():
        if not path.exists():
            continue
        columns = [column] if isinstance(column, str) else list(column)
        keys = lake.read_table(path, columns=columns).group_by(columns).aggregate([])
        values = zip(*(keys[c].to_pylist() for c in columns), strict=True)
        held = {" ".join(v) for v in values if None not in v}
        held = {instrument_of(v) if instrument_of else v for v in held}
        missing = sorted(held - set(universe))
        if missing:
            dropped[partition_key] = missing
    if dropped:
        keys = sorted(dropped)
        names = sorted({name for names in dropped.values() for name in names})
        raise dg.Failure(
            description=(
                f"{asset_key}: refusing to overwrite {len(keys)} partition(s) "
                f"({keys[0]}..{keys[-1]}) that hold {', '.join(names)}, which the instrument "
                f"universe ({instruments_file()}) no longer lists"
                + (f" (it lists {', '.join(universe)})" if universe else " (it lists none)")
                + ". Nothing was pulled or written. If the universe is meant to shrink, set "
                "MKT_ALLOW_UNIVERSE_SHRINK=1 for this run."
            ),
            metadata={"dropped_instruments": dg.MetadataValue.json(dropped)},
        )


#: The data-quality checks of each kind of raw dataset: (name, blocking, description).
#: A blocking check that fails stops the marts from refreshing over the asset (declarative
#: automation waits for ``all_deps_blocking_checks_passed``); a warning only shows in the UI.
QUALITY_CHECKS: dict[str, tuple[tuple[str, bool, str], ...]] = {
    "candles": (
        ("no_duplicate_keys", True, "No two rows share (instrument, open time)."),
        (
            "times_monotonic_and_aligned",
            True,
            "Open times strictly increase per instrument and sit on the interval grid (UTC).",
        ),
        ("ohlc_sane", True, "low <= open, close <= high; prices positive and not null."),
        ("non_negative_volumes", True, "Volumes (and trade counts) are never negative."),
        (
            "expected_candles",
            False,
            "Every candle of the elapsed day is there; missing ranges are listed per "
            "instrument, and a confirmed exchange gap (a trading halt) is reported, not failed.",
        ),
    ),
    "equity_bars": (
        ("no_duplicate_keys", True, "No two bars share (ticker, bar time)."),
        (
            "times_monotonic_and_aligned",
            True,
            "Bar times strictly increase per ticker and sit on the minute (UTC).",
        ),
        ("ohlc_sane", True, "low <= open, close <= high; prices positive and not null."),
        ("non_negative_volumes", True, "Volumes and trade counts are never negative."),
    ),
    "order_book": (
        ("no_duplicate_keys", True, "No two rows share (snapshot time, symbol, side, level)."),
        ("non_negative_volumes", True, "No level has a negative price or quantity."),
    ),
    "ticker_24h": (
        ("no_duplicate_keys", True, "No two rows share (snapshot time, symbol)."),
        (
            "ohlc_sane",
            True,
            "low <= open, last <= high over the 24 hours; prices positive and not null.",
        ),
        ("non_negative_volumes", True, "Volumes and the trade count are never negative."),
    ),
    "recent_trades": (
        ("no_duplicate_keys", True, "No two rows of a snapshot share (symbol, trade id)."),
        ("times_monotonic", True, "Trade ids and times never decrease within a snapshot."),
        ("non_negative_volumes", True, "Prices and quantities are never negative."),
    ),
    "funding": (
        ("no_duplicate_keys", True, "No two funding records share (coin, time)."),
        ("times_monotonic", True, "Funding times strictly increase per coin."),
    ),
    "option_trades": (
        ("no_duplicate_keys", True, "No two trades share a trade_id."),
        ("times_monotonic", True, "Trade times never decrease (same millisecond allowed)."),
        (
            "option_trades_sane",
            True,
            "Prices and amounts positive; implied volatility, when sent, within a sane range.",
        ),
        (
            "instrument_names_parse",
            True,
            "Every instrument name parses, and its expiry, strike and type equal the columns.",
        ),
    ),
}


#: Candles of an index (no volume): the candle checks but the volumes'.
QUALITY_CHECKS["index_candles"] = tuple(
    check for check in QUALITY_CHECKS["candles"] if check[0] != "non_negative_volumes"
)


def refuse_failing_partitions(
    asset_key: str,
    dataset: str,
    kind: str,
    outcomes: Mapping[str, Sequence[Any]],
    tables: Mapping[str, pa.Table],
) -> None:
    """Keep partitions that fail a blocking data-quality check out of the lake.

    Called after the quality checks ran on the pulled tables and before anything is written:
    when any partition fails a blocking check of ``kind``, nothing of the run is written (the
    lake keeps what it had, so dbt never reads the bad rows), the failing partitions' rows are
    kept in the quarantine (:func:`quarantine.save_rejected`), and the run fails.

    Raises:
        dagster.Failure: naming the asset, each failing partition, check and count, and the
            first offending rows (key and values), and where the rows were quarantined.
    """
    blocking = {name for name, is_blocking, _ in QUALITY_CHECKS[kind] if is_blocking}
    failing = {
        pk: [o for o in partition_outcomes if o.name in blocking and not o.passed]
        for pk, partition_outcomes in outcomes.items()
    }
    failing = {pk: found for pk, found in failing.items() if found}
    if not failing:
        return
    lines, kept = [], {}
    for pk, found in sorted(failing.items()):
        records = [{"check": o.name, "failures": o.failures, "examples": o.examples} for o in found]
        kept[pk] = str(quarantine.save_rejected(dataset, pk, tables[pk], records))
        for o in found:
            lines.append(
                f"{pk} {o.name}: {o.failures} row(s) at fault, first: " + "; ".join(o.examples[:3])
            )
    raise dg.Failure(
        description=(
            f"{asset_key}: {len(failing)} partition(s) failed blocking data-quality "
            f"checks, so nothing of this run was written to the lake (dbt keeps reading what "
            f"was there). " + " | ".join(lines) + f" | The pulled rows are quarantined under "
            f"{quarantine.quarantine_dir() / 'rejected' / dataset}."
        ),
        metadata={
            "failed_checks": dg.MetadataValue.json(
                {pk: [o.name for o in found] for pk, found in failing.items()}
            ),
            "quarantined": dg.MetadataValue.json(kept),
        },
    )


def quality_check_specs(key: dg.AssetKey, kind: str) -> list[dg.AssetCheckSpec]:
    """The data-quality check specs of a raw asset of ``kind`` (see :data:`QUALITY_CHECKS`)."""
    return [
        dg.AssetCheckSpec(name, asset=key, blocking=blocking, description=description)
        for name, blocking, description in QUALITY_CHECKS[kind]
    ]


def check_results(
    key: dg.AssetKey, kind: str, outcomes: Mapping[str, Sequence[Any]]
) -> list[dg.AssetCheckResult]:
    """One result per check of ``kind`` for a run, from each partition's outcomes.

    Args:
        key: the raw asset.
        kind: its kind in :data:`QUALITY_CHECKS`.
        outcomes: per partition key, the :class:`~mkt_platform.lib.quality.CheckOutcome` of
            each check (matched by name).

    Returns:
        Results that pass only if the check passed on every partition of the run; their
        metadata gives the failures per partition and up to 10 examples naming the key.
    """
    from mkt_platform.lib import quality

    results = []
    for name, blocking, _ in QUALITY_CHECKS[kind]:
        per_partition = {
            pk: outcome
            for pk, partition_outcomes in outcomes.items()
            for outcome in partition_outcomes
            if outcome.name == name
        }
        merged = quality.merge(name, per_partition)
        results.append(
            dg.AssetCheckResult(
                asset_key=key,
                check_name=name,
                passed=merged.passed,
                severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
                metadata={
                    "failures": merged.failures,
                    "partitions": dg.MetadataValue.json(sorted(per_partition)),
                    "examples": dg.MetadataValue.json(list(merged.examples)),
                    "details": dg.MetadataValue.json(merged.metadata),
                },
            )
        )
    return results


def _named(outcome: Any, name: str) -> Any:
    from dataclasses import replace

    return replace(outcome, name=name)


def candle_quality(
    day: pa.Table,
    group: str,
    groups: Sequence[str],
    day_start_ms: int,
    interval_ms: int,
    pulled_at_ms: int,
    known_gaps: Mapping[str, Sequence[str]] | None = None,
    volumes: Sequence[str] = ("volume",),
    time_column: str = "open_time",
) -> list[Any]:
    """The ``candles`` checks of :data:`QUALITY_CHECKS` on one day's candles, or the
    ``index_candles`` checks when there are no ``volumes`` (an index such as DVOL).

    Expected candles run from the day's start to its end, or to the last candle closed at
    ``pulled_at_ms`` for today's partial day. ``known_gaps`` (per instrument, ``HH:MM-HH:MM``)
    are the exchange's own confirmed gaps: reported, not failed.
    """
    from mkt_platform.lib import quality

    elapsed = min(86_400_000, max(0, pulled_at_ms - day_start_ms)) // interval_ms * interval_ms
    keys = [group, time_column]
    outcomes = [
        quality.no_duplicate_keys(day, keys),
        quality.times_monotonic_and_aligned(day, group, time_column, interval_ms),
        quality.ohlc_sane(day, keys=keys),
    ]
    if volumes:
        outcomes.append(
            _named(quality.non_negative(day, list(volumes), keys=keys), "non_negative_volumes")
        )
    outcomes.append(
        quality.expected_candles(
            day,
            group,
            time_column,
            groups,
            day_start_ms,
            day_start_ms + elapsed,
            interval_ms,
            known_gaps,
        )
    )
    return outcomes


def equity_bar_quality(day: pa.Table) -> list[Any]:
    """The ``equity_bars`` checks of :data:`QUALITY_CHECKS` on one trading day's minute bars
    (a minute without a trade has no bar: there is no completeness check)."""
    from mkt_platform.lib import quality

    keys = ["ticker", "bar_time"]
    return [
        quality.no_duplicate_keys(day, keys),
        quality.times_monotonic_and_aligned(day, "ticker", "bar_time", 60_000, keys=keys),
        quality.ohlc_sane(day, keys=keys),
        _named(
            quality.non_negative(day, ["volume", "transactions"], keys=keys),
            "non_negative_volumes",
        ),
    ]


def order_book_quality(snapshot: pa.Table) -> list[Any]:
    """The ``order_book`` checks of :data:`QUALITY_CHECKS` on one snapshot's levels (the
    contract has already refused books out of order or crossed)."""
    from mkt_platform.lib import quality

    keys = ["snapshot_time", "symbol", "side", "level"]
    return [
        quality.no_duplicate_keys(snapshot, keys),
        _named(
            quality.non_negative(snapshot, ["price", "quantity"], keys=keys),
            "non_negative_volumes",
        ),
    ]


def ticker_24h_quality(snapshot: pa.Table) -> list[Any]:
    """The ``ticker_24h`` checks of :data:`QUALITY_CHECKS` on one snapshot's tickers."""
    from mkt_platform.lib import quality

    keys = ["symbol", "snapshot_time"]
    return [
        quality.no_duplicate_keys(snapshot, keys),
        quality.ohlc_sane(
            snapshot, "open_price", "high_price", "low_price", "last_price", keys=keys
        ),
        _named(
            quality.non_negative(snapshot, ["volume", "quote_volume", "trades"], keys=keys),
            "non_negative_volumes",
        ),
    ]


def recent_trades_quality(snapshot: pa.Table) -> list[Any]:
    """The ``recent_trades`` checks of :data:`QUALITY_CHECKS` on one snapshot's trades (the
    day's file repeats a trade in every snapshot that saw it, so the checks read one)."""
    from mkt_platform.lib import quality

    keys = ["symbol", "trade_id"]
    return [
        quality.no_duplicate_keys(snapshot, keys),
        _named(
            quality.times_monotonic_and_aligned(
                snapshot, "symbol", "trade_time", None, strict=False, keys=keys
            ),
            "times_monotonic",
        ),
        _named(
            quality.non_negative(snapshot, ["price", "quantity", "quote_quantity"], keys=keys),
            "non_negative_volumes",
        ),
    ]


def funding_quality(day: pa.Table) -> list[Any]:
    """The ``funding`` checks of :data:`QUALITY_CHECKS` on one day's funding records."""
    from mkt_platform.lib import quality

    return [
        quality.no_duplicate_keys(day, ["coin", "time"]),
        _named(
            quality.times_monotonic_and_aligned(day, "coin", "time", None, strict=True),
            "times_monotonic",
        ),
    ]


def option_trade_quality(day: pa.Table, parse: Callable[[Any], Any]) -> list[Any]:
    """The ``option_trades`` checks of :data:`QUALITY_CHECKS` on one day's trades; ``parse``
    is the venue's instrument-name parser (see :func:`quality.instrument_names_parse`)."""
    from mkt_platform.lib import quality

    return [
        quality.no_duplicate_keys(day, ["trade_id"]),
        _named(
            quality.times_monotonic_and_aligned(
                day, "instrument_name", "timestamp", None, strict=False
            ),
            "times_monotonic",
        ),
        quality.option_trades_sane(day),
        quality.instrument_names_parse(day, parse),
    ]
