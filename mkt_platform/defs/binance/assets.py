"""Raw Binance spot klines, one Parquet file per UTC day.

Source: ``GET /api/v3/klines`` (see ``resources.py``). The instrument universe comes from
``mkt_platform/instruments.yaml`` (binance spot instruments that list the interval).
"""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from mkt_platform.defs.binance.contract import INTERVAL_MS, KLINE_CONTRACT, KLINE_LAKE_SCHEMA
from mkt_platform.defs.binance.resources import BinanceSpotClient
from mkt_platform.lib import lake
from mkt_platform.lib.instruments import symbols_for
from mkt_platform.lib.partitions import raw_daily_partitions_def

SOURCE = "binance"
DAY_MS = 86_400_000


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def kline_column_schema() -> dg.TableSchema:
    """Column schema of the raw kline files, shown in the Dagster UI."""
    columns = [dg.TableColumn("symbol", "string", "Binance spot symbol, e.g. BTCUSDT.")]
    columns += [
        dg.TableColumn(f.name, str(f.arrow_type), f.description) for f in KLINE_CONTRACT.fields
    ]
    return dg.TableSchema(columns=columns)


def split_partition(
    klines: pa.Table,
    day_start: datetime,
    interval: str,
    symbols: tuple[str, ...],
    pulled_at: datetime,
) -> tuple[pa.Table, dict]:
    """The klines of one UTC day, sorted on (symbol, open time), and its metadata.

    Args:
        klines: klines of several days and symbols, with the ``KLINE_LAKE_SCHEMA`` columns.
        day_start: the partition's UTC midnight.
        interval: the Binance interval of ``klines``, e.g. ``1h``.
        symbols: the symbols that were pulled (a symbol with no kline that day counts too).
        pulled_at: when the data was fetched; klines not closed by then are left out.

    Returns:
        The day's table, and the materialization metadata: rows per symbol, first and last
        open time, expected versus actual candle count with the missing open times, a content
        hash, and whether the day had closed when it was pulled.
    """
    interval_ms = INTERVAL_MS[interval]
    start_ms, end_ms = _ms(day_start), _ms(day_start) + DAY_MS
    open_ms = pc.cast(klines["open_time"], pa.int64())
    close_ms = pc.cast(klines["close_time"], pa.int64())
    in_day = pc.and_(pc.greater_equal(open_ms, start_ms), pc.less(open_ms, end_ms))
    closed = pc.less(close_ms, _ms(pulled_at))
    day = klines.filter(pc.and_(in_day, closed)).sort_by(
        [("symbol", "ascending"), ("open_time", "ascending")]
    )

    expected_per_symbol = min(DAY_MS, max(0, _ms(pulled_at) - start_ms)) // interval_ms
    rows_per_symbol, missing = {}, {}
    for symbol in symbols:
        opens = set(
            pc.cast(
                day.filter(pc.equal(day["symbol"], symbol))["open_time"], pa.int64()
            ).to_pylist()
        )
        rows_per_symbol[symbol] = len(opens)
        gaps = [
            datetime.fromtimestamp(t / 1000, UTC).strftime("%H:%M")
            for t in range(start_ms, start_ms + expected_per_symbol * interval_ms, interval_ms)
            if t not in opens
        ]
        if gaps:
            missing[symbol] = gaps
    window_closed = pulled_at >= day_start + timedelta(days=1)
    metadata = {
        "dagster/row_count": day.num_rows,
        "rows_per_symbol": dg.MetadataValue.json(rows_per_symbol),
        "expected_candles": expected_per_symbol * len(symbols),
        "actual_candles": day.num_rows,
        "missing_candles": dg.MetadataValue.json(missing),
        "content_hash": lake.content_hash(day),
        "window_closed": window_closed,
        "pulled_at": dg.MetadataValue.timestamp(pulled_at),
    }
    if day.num_rows:
        metadata["first_open_time"] = dg.MetadataValue.timestamp(pc.min(day["open_time"]).as_py())
        metadata["last_open_time"] = dg.MetadataValue.timestamp(pc.max(day["open_time"]).as_py())
    return day, metadata


def build_klines_asset(interval: str) -> dg.AssetsDefinition:
    """The raw asset ``binance_klines_<interval>``: daily UTC partitions of spot klines."""
    dataset = f"klines_{interval}"

    @dg.asset(
        name=f"binance_klines_{interval}",
        group_name="raw_binance",
        kinds={"python", "parquet"},
        partitions_def=raw_daily_partitions_def(),
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=(
            f"Binance spot {interval} klines (GET /api/v3/klines) of the configured instruments, "
            "one Parquet file per UTC day. Prices in quote currency and volumes as "
            "DECIMAL(38,8); open and close times as UTC timestamps. Today's partition is "
            "partial and is pulled again until the day has closed."
        ),
        metadata={
            "dagster/column_schema": kline_column_schema(),
            "lake_path": dg.MetadataValue.path(lake.raw_dataset_glob(SOURCE, dataset)),
        },
    )
    def _klines(context: dg.AssetExecutionContext, binance: BinanceSpotClient) -> None:
        window = context.partition_time_window
        symbols = symbols_for(SOURCE, "spot", interval)
        pulled_at = datetime.now(UTC)
        context.log.info(
            f"pulling {interval} klines of {', '.join(symbols)} for "
            f"{len(context.partition_keys)} partition(s), "
            f"{window.start:%Y-%m-%d %H:%M} to {window.end:%Y-%m-%d %H:%M} UTC"
        )
        # One paginated range per symbol for the whole run: a single-run backfill of many
        # days costs ceil(candles / 1000) requests per symbol, not one per partition.
        # Every page is validated before any file is written.
        tables = []
        for symbol in symbols:
            klines = binance.fetch_klines(symbol, interval, _ms(window.start), _ms(window.end) - 1)
            context.log.info(f"{symbol}: {klines.num_rows} klines")
            tables.append(
                klines.add_column(0, "symbol", pa.array([symbol] * klines.num_rows, pa.string()))
            )
        klines = (
            pa.concat_tables(tables).cast(KLINE_LAKE_SCHEMA)
            if tables
            else KLINE_LAKE_SCHEMA.empty_table()
        )

        for partition_key in context.partition_keys:
            day_start = datetime.fromisoformat(partition_key).replace(tzinfo=UTC)
            day, metadata = split_partition(klines, day_start, interval, symbols, pulled_at)
            path = lake.raw_partition_path(SOURCE, dataset, partition_key)
            size = lake.write_parquet_atomic(day, path)
            metadata["path"] = dg.MetadataValue.path(str(path))
            metadata["file_bytes"] = size
            context.add_asset_metadata(metadata, partition_key=partition_key)
            if metadata["expected_candles"] != day.num_rows:
                context.log.warning(
                    f"{partition_key}: {day.num_rows} of {metadata['expected_candles']} candles; "
                    f"missing {metadata['missing_candles'].value}"
                )

    return _klines
