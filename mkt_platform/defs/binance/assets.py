"""Raw Binance spot klines, one Parquet file per UTC day, and the 5-minute snapshots of the
present (order books, 24h tickers, recent trades) appended to today's file.

Source: ``GET /api/v3/klines``, ``/api/v3/depth``, ``/api/v3/ticker/24hr`` and
``/api/v3/trades`` (see ``resources.py``). The instrument universe comes from
``mkt_platform/instruments.yaml`` (binance spot instruments that list the interval; those
marked ``order_book: true`` for the snapshots).
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from mkt_platform import settings
from mkt_platform.defs.binance.contract import (
    INTERVAL_MS,
    KLINE_CONTRACT,
    KLINE_LAKE_SCHEMA,
    ORDER_BOOK_LAKE_SCHEMA,
    RECENT_TRADE_CONTRACT,
    RECENT_TRADES_LAKE_SCHEMA,
    TICKER_24H_CONTRACT,
    TICKER_24H_LAKE_SCHEMA,
)
from mkt_platform.defs.binance.resources import BinanceSpotClient
from mkt_platform.lib import lake, raw
from mkt_platform.lib.contracts import ContractViolation
from mkt_platform.lib.datasets import latest_metadata_of_partitions
from mkt_platform.lib.gaps import format_range, missing_ranges, parse_range
from mkt_platform.lib.instruments import symbols_for

SOURCE = "binance"
DAY_MS = raw.DAY_MS


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


COLUMN_DESCRIPTIONS = {
    "symbol": "Binance spot symbol, e.g. BTCUSDT.",
    **{f.name: f.description for f in KLINE_CONTRACT.fields},
}


def _day_start(partition_key: str) -> datetime:
    return datetime.fromisoformat(partition_key).replace(tzinfo=UTC)


def fetch_kline_range(
    binance: BinanceSpotClient,
    interval: str,
    symbols: tuple[str, ...],
    start: datetime,
    end: datetime,
) -> pa.Table:
    """Klines of ``symbols`` opening in ``[start, end)``: one paginated range per symbol (a
    backfill of many days costs ``ceil(candles / 1000)`` requests per symbol, not one per
    day), validated before anything is written, with ``KLINE_LAKE_SCHEMA``.

    Raises:
        ContractViolation: a page broke the kline contract (it is quarantined).
    """
    tables = []
    for symbol in symbols:
        klines = binance.fetch_klines(symbol, interval, _ms(start), _ms(end) - 1)
        tables.append(_with_symbol(klines, symbol))
    if not tables:
        return KLINE_LAKE_SCHEMA.empty_table()
    return pa.concat_tables(tables).cast(KLINE_LAKE_SCHEMA)


def kline_day_tables(
    binance: BinanceSpotClient, interval: str, partition_keys: list[str], now: datetime
) -> dict[str, pa.Table]:
    """What a pull at ``now`` would write for each partition (the late-data sensor compares
    their content hashes with the recorded ones): one range for all of them."""
    symbols = symbols_for(SOURCE, "spot", interval)
    first, last = _day_start(min(partition_keys)), _day_start(max(partition_keys))
    klines = fetch_kline_range(binance, interval, symbols, first, last + timedelta(days=1))
    return {
        pk: split_partition(klines, _day_start(pk), interval, symbols, now)[0]
        for pk in partition_keys
    }


def split_partition(
    klines: pa.Table,
    day_start: datetime,
    interval: str,
    symbols: tuple[str, ...],
    pulled_at: datetime,
    known_gaps: dict[str, list[str]] | None = None,
) -> tuple[pa.Table, dict]:
    """The klines of one UTC day, sorted on (symbol, open time), and its metadata.

    Args:
        klines: klines of several days and symbols, with the ``KLINE_LAKE_SCHEMA`` columns.
        day_start: the partition's UTC midnight.
        interval: the Binance interval of ``klines``, e.g. ``1h``.
        symbols: the symbols that were pulled (a symbol with no kline that day counts too).
        pulled_at: when the data was fetched; klines not closed by then are left out.
        known_gaps: per symbol, missing ranges already confirmed as the exchange's own (a
            re-pull after the window closed came back empty); they stay reported but are not
            counted as unrepaired.

    Returns:
        The day's table, and the materialization metadata: rows per symbol, first and last
        open time, expected versus actual candle count, the missing candles as ranges of open
        times per symbol (``missing_candles``), which of them are known exchange gaps
        (``known_gaps``) and how many candles are still to repair (``unrepaired_candles``),
        a content hash, and whether the day had closed when it was pulled.
    """
    interval_ms = INTERVAL_MS[interval]
    start_ms, end_ms = _ms(day_start), _ms(day_start) + DAY_MS
    open_ms = pc.cast(klines["open_time"], pa.int64())
    # A replayed recording may lack close_time (NULL): the kline closes at open + interval.
    close_ms = pc.coalesce(
        pc.cast(klines["close_time"], pa.int64()), pc.add(open_ms, interval_ms - 1)
    )
    in_day = pc.and_(pc.greater_equal(open_ms, start_ms), pc.less(open_ms, end_ms))
    closed = pc.less(close_ms, _ms(pulled_at))
    day = klines.filter(pc.and_(in_day, closed)).sort_by(
        [("symbol", "ascending"), ("open_time", "ascending")]
    )

    expected_per_symbol = min(DAY_MS, max(0, _ms(pulled_at) - start_ms)) // interval_ms
    known_gaps = known_gaps or {}
    rows_per_symbol, missing, known, unrepaired = {}, {}, {}, 0
    for symbol in symbols:
        opens = set(
            pc.cast(
                day.filter(pc.equal(day["symbol"], symbol))["open_time"], pa.int64()
            ).to_pylist()
        )
        rows_per_symbol[symbol] = len(opens)
        ranges = missing_ranges(
            opens, start_ms, start_ms + expected_per_symbol * interval_ms, interval_ms
        )
        if ranges:
            missing[symbol] = [format_range(*r) for r in ranges]
            confirmed = [r for r in missing[symbol] if r in known_gaps.get(symbol, [])]
            if confirmed:
                known[symbol] = confirmed
            unrepaired += sum(
                (last - first) // interval_ms + 1
                for (first, last), text in zip(ranges, missing[symbol], strict=True)
                if text not in confirmed
            )
    window_closed = pulled_at >= day_start + timedelta(days=1)
    metadata = {
        "dagster/row_count": day.num_rows,
        "rows_per_instrument": dg.MetadataValue.json(rows_per_symbol),
        "expected_candles": expected_per_symbol * len(symbols),
        "actual_candles": day.num_rows,
        "missing_candles": dg.MetadataValue.json(missing),
        "known_gaps": dg.MetadataValue.json(known),
        "unrepaired_candles": unrepaired,
        "content_hash": lake.content_hash(day),
        "window_closed": window_closed,
        "pulled_at": dg.MetadataValue.timestamp(pulled_at),
    }
    if day.num_rows:
        metadata["first_open_time"] = dg.MetadataValue.timestamp(pc.min(day["open_time"]).as_py())
        metadata["last_open_time"] = dg.MetadataValue.timestamp(pc.max(day["open_time"]).as_py())
    return day, metadata


class KlinePullConfig(dg.Config):
    """Run configuration of a kline pull (the Launchpad shows it)."""

    gap_repair: bool = Field(
        default=False,
        description=(
            "Re-pull only the missing candle ranges of the partitions' existing files instead "
            "of whole days (the gap-repair schedule sets this). A range still missing after a "
            "re-pull of a closed window is recorded as a known exchange gap and never re-pulled."
        ),
    )


def _json_meta(metadata: dict[str, Any], name: str) -> dict:
    value = metadata.get(name)
    return dict(value.value) if value is not None else {}


def _with_symbol(klines: pa.Table, symbol: str) -> pa.Table:
    return klines.add_column(0, "symbol", pa.array([symbol] * klines.num_rows, pa.string()))


def klines_pull(interval: str):
    """The pull of the raw asset ``binance_klines_<interval>`` (declared in ``datasets.py``):
    daily UTC partitions of spot klines.

    A normal run pulls whole days (one paginated range per symbol for the run). A run with
    ``gap_repair`` set re-pulls only the ranges missing from the partitions' files.
    """
    dataset = f"klines_{interval}"
    key = dg.AssetKey(f"binance_klines_{interval}")
    interval_ms = INTERVAL_MS[interval]

    def _klines(
        context: dg.AssetExecutionContext, binance: BinanceSpotClient, config: KlinePullConfig
    ) -> dg.MaterializeResult:
        window = context.partition_time_window
        symbols = symbols_for(SOURCE, "spot", interval)
        raw.refuse_universe_shrink(
            key.to_user_string(),
            {pk: lake.raw_partition_path(SOURCE, dataset, pk) for pk in context.partition_keys},
            "symbol",
            symbols,
        )
        pulled_at = settings.utcnow()
        mode = "gap repair of" if config.gap_repair else "pulling"
        context.log.info(
            f"{mode} {interval} klines of {', '.join(symbols)} for "
            f"{len(context.partition_keys)} partition(s), "
            f"{window.start:%Y-%m-%d %H:%M} to {window.end:%Y-%m-%d %H:%M} UTC"
        )
        previous = latest_metadata_of_partitions(context.instance, key, context.partition_keys)
        try:
            if config.gap_repair:
                days = {
                    pk: _repair_day(context, binance, pk, symbols, previous[pk], pulled_at)
                    for pk in context.partition_keys
                }
            else:
                days = _pull_range(context, binance, symbols, window, pulled_at, previous)
        except ContractViolation as exc:
            raise raw.contract_failure(exc, key.to_user_string(), context.partition_keys) from exc
        added = sorted(binance.last_added_fields)
        if added:
            context.log.warning(f"Binance sent fields the kline contract lacks: {added}")
        outcomes, prepared = {}, {}
        for partition_key, (klines, known_gaps, repaired) in days.items():
            day_start = datetime.fromisoformat(partition_key).replace(tzinfo=UTC)
            day, metadata = split_partition(
                klines, day_start, interval, symbols, pulled_at, known_gaps
            )
            prepared[partition_key] = (day, metadata, repaired)
            outcomes[partition_key] = raw.candle_quality(
                day,
                "symbol",
                symbols,
                _ms(day_start),
                interval_ms,
                _ms(pulled_at),
                known_gaps,
                ("volume", "quote_volume", "trades"),
            )
        # Rows that fail a blocking check never reach the lake that dbt reads.
        raw.refuse_failing_partitions(
            key.to_user_string(),
            f"{SOURCE}_{dataset}",
            "candles",
            outcomes,
            {pk: day for pk, (day, _, _) in prepared.items()},
        )
        for partition_key, (day, metadata, repaired) in prepared.items():
            path = lake.raw_partition_path(SOURCE, dataset, partition_key)
            metadata.update(
                raw.write_partition(
                    path,
                    day,
                    ["symbol", "open_time"],
                    "open_time",
                    COLUMN_DESCRIPTIONS,
                    content_hash=metadata["content_hash"],
                )
            )
            metadata["added_fields"] = dg.MetadataValue.json(added)
            if config.gap_repair:
                metadata["repaired_ranges"] = dg.MetadataValue.json(repaired)
            context.add_asset_metadata(metadata, partition_key=partition_key)
            if metadata["unrepaired_candles"]:
                context.log.warning(
                    f"{partition_key}: {day.num_rows} of {metadata['expected_candles']} candles; "
                    f"missing {metadata['missing_candles'].value}"
                )
        return dg.MaterializeResult(check_results=raw.check_results(key, "candles", outcomes))

    def _pull_range(context, binance, symbols, window, pulled_at, previous) -> dict:
        klines = fetch_kline_range(binance, interval, symbols, window.start, window.end)
        context.log.info(f"{klines.num_rows} klines of {len(symbols)} symbol(s)")
        return {
            pk: (klines, _json_meta(previous[pk], "known_gaps"), {})
            for pk in context.partition_keys
        }

    def _repair_day(context, binance, partition_key, symbols, previous, pulled_at) -> tuple:
        day_start = datetime.fromisoformat(partition_key).replace(tzinfo=UTC)
        path = lake.raw_partition_path(SOURCE, dataset, partition_key)
        known = _json_meta(previous, "known_gaps")
        if not path.exists():
            context.log.info(f"{partition_key}: no file yet, pulling the whole day")
            window = dg.TimeWindow(day_start, day_start + timedelta(days=1))
            pulled = _pull_range(context, binance, symbols, window, pulled_at, {partition_key: {}})
            return (*pulled[partition_key][:2], {})
        existing = lake.read_table(path).cast(KLINE_LAKE_SCHEMA)
        _, before = split_partition(existing, day_start, interval, symbols, pulled_at, known)
        tables, repaired = [existing], {}
        for symbol, ranges in before["missing_candles"].value.items():
            for text in ranges:
                if text in known.get(symbol, []):
                    continue
                first, last = parse_range(day_start, text)
                fetched = binance.fetch_klines(symbol, interval, first, last)
                context.log.info(
                    f"{partition_key} {symbol} {text}: re-pulled, {fetched.num_rows} klines"
                )
                repaired.setdefault(symbol, []).append(text)
                tables.append(_with_symbol(fetched, symbol).cast(KLINE_LAKE_SCHEMA))
                if last + interval_ms <= _ms(pulled_at):
                    # A closed range re-pulled: whatever is still missing in it now is the
                    # exchange's own gap; remember it so it is never re-pulled again.
                    opens = set(pc.cast(fetched["open_time"], pa.int64()).to_pylist())
                    for gap in missing_ranges(opens, first, last + 1, interval_ms):
                        gap_text = format_range(*gap)
                        known.setdefault(symbol, []).append(gap_text)
                        context.log.warning(
                            f"{partition_key} {symbol} {gap_text}: Binance has no klines there "
                            "(an exchange gap, e.g. a trading halt); recorded as a known gap, "
                            "not re-pulled again"
                        )
        return pa.concat_tables(tables), known, repaired

    return _klines


#: The order-book lake columns, with units (the dataset's column schema in Dagster).
ORDER_BOOK_COLUMNS = {
    "snapshot_time": "When the platform took the snapshot (UTC, ms): the request's time.",
    "symbol": "Binance spot symbol, e.g. BTCUSDT.",
    "last_update_id": "Binance's book update id of the snapshot (lastUpdateId).",
    "side": "'bid' or 'ask'.",
    "level": "1 for the best price of the side, then outwards.",
    "price": "Level price (quote currency).",
    "quantity": "Quantity resting at the level (base currency).",
}


def snapshot_order_books(
    context: dg.AssetExecutionContext, binance: BinanceSpotClient
) -> dg.MaterializeResult:
    """Append one order-book snapshot of every ``order_book`` symbol
    (``GET /api/v3/depth``, ``MKT_BINANCE_ORDER_BOOK_LEVELS`` levels a side) to today's
    partition. Binance keeps no history of its books, so only today's partition can be
    snapshotted.

    Raises:
        dagster.Failure: a past partition (nothing is invented for it), or a book that broke
            its contract (quarantined; nothing written).
    """
    levels = settings.binance_order_book_levels()
    return _take_snapshot(
        context,
        "order_book",
        "its order books",
        lambda symbol, now_ms: binance.fetch_order_book(symbol, levels, now_ms),
        ORDER_BOOK_LAKE_SCHEMA,
        ["snapshot_time", "symbol", ("side", "descending"), "level"],
        ORDER_BOOK_COLUMNS,
        f"book(s), {levels} levels a side",
        {"levels_per_side": levels},
        quality=("order_book", raw.order_book_quality),
    )


#: The 24h-ticker lake columns, with units.
TICKER_24H_COLUMNS = {
    "snapshot_time": "When the platform took the snapshot (UTC, ms): the request's time.",
    **{f.name: f.description for f in TICKER_24H_CONTRACT.fields},
}


def snapshot_tickers(
    context: dg.AssetExecutionContext, binance: BinanceSpotClient
) -> dg.MaterializeResult:
    """Append one snapshot of the rolling 24-hour statistics of every ``order_book`` symbol
    (``GET /api/v3/ticker/24hr``) to today's partition; only today's can be taken.

    Raises:
        dagster.Failure: a past partition, an answer that broke its contract (quarantined;
            nothing written), or a blocking check failed (nothing written).
    """
    return _take_snapshot(
        context,
        "ticker_24h",
        "its 24-hour statistics of the past",
        binance.fetch_ticker_24h,
        TICKER_24H_LAKE_SCHEMA,
        ["snapshot_time", "symbol"],
        TICKER_24H_COLUMNS,
        "24h ticker(s)",
        quality=("ticker_24h", raw.ticker_24h_quality),
    )


#: The recent-trades lake columns, with units.
RECENT_TRADES_COLUMNS = {
    "snapshot_time": "When the platform took the snapshot (UTC, ms): the request's time.",
    "symbol": "Binance spot symbol, e.g. BTCUSDT.",
    **{f.name: f.description for f in RECENT_TRADE_CONTRACT.fields},
}


def snapshot_recent_trades(
    context: dg.AssetExecutionContext, binance: BinanceSpotClient
) -> dg.MaterializeResult:
    """Append one snapshot of the ``MKT_BINANCE_RECENT_TRADES`` most recent trades of every
    ``order_book`` symbol (``GET /api/v3/trades``) to today's partition; only today's can be
    taken (the endpoint serves the newest trades only).

    Raises:
        dagster.Failure: a past partition, an answer that broke its contract (quarantined;
            nothing written), or a blocking check failed (nothing written).
    """
    limit = settings.binance_recent_trades()
    return _take_snapshot(
        context,
        "recent_trades",
        "GET /api/v3/trades serves only the newest trades",
        lambda symbol, now_ms: binance.fetch_recent_trades(symbol, limit, now_ms),
        RECENT_TRADES_LAKE_SCHEMA,
        ["snapshot_time", "symbol", "trade_id"],
        RECENT_TRADES_COLUMNS,
        f"trade list(s), the last {limit} trades each",
        {"trades_per_symbol": limit},
        quality=("recent_trades", raw.recent_trades_quality),
    )


def _take_snapshot(
    context: dg.AssetExecutionContext,
    dataset: str,
    no_history: str,
    fetch: Callable[[str, int], pa.Table],
    schema: pa.Schema,
    sort_by: list,
    columns: dict[str, str],
    what: str,
    extra: dict[str, Any] | None = None,
    quality: tuple[str, Callable[[pa.Table], list]] | None = None,
) -> dg.MaterializeResult:
    """One snapshot of the present of every ``order_book`` symbol (``fetch(symbol,
    now_ms)``), checked (``quality``: its kind and check function; a blocking failure
    writes nothing) and appended to today's partition of ``binance/<dataset>``."""
    from mkt_platform.lib.instruments import order_book_symbols

    key = context.asset_key.to_user_string()
    now, today = raw.snapshot_moment(context, f"Binance keeps no history of {no_history}")
    symbols = order_book_symbols()
    try:
        parts = [fetch(symbol, _ms(now)) for symbol in symbols]
    except ContractViolation as exc:
        raise raw.contract_failure(exc, key, [today]) from exc
    snapshot = pa.concat_tables(parts) if parts else schema.empty_table()
    checks = []
    if quality is not None:
        kind, check = quality
        outcomes = {today: check(snapshot)}
        raw.refuse_failing_partitions(key, f"{SOURCE}_{dataset}", kind, outcomes, {today: snapshot})
        checks = raw.check_results(context.asset_key, kind, outcomes)
    path = lake.raw_partition_path(SOURCE, dataset, today)
    day, metadata = raw.append_snapshot(path, snapshot, sort_by, columns)
    context.log.info(
        f"{key} {today}: a snapshot of {len(symbols)} {what}, {snapshot.num_rows} rows"
    )
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "snapshot_time": dg.MetadataValue.timestamp(now),
            "symbols": dg.MetadataValue.json(list(symbols)),
            **(extra or {}),
            "snapshots_today": len(set(day["snapshot_time"].to_pylist())),
        },
        check_results=checks,
    )
