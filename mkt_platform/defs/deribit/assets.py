"""Raw Deribit option trades, one Parquet file per UTC day, streamed page by page.

Source: ``GET /api/v2/public/get_last_trades_by_currency_and_time`` (kind=option; see
``resources.py``), from the history API (``DERIBIT_HISTORY_BASE_URL``) for days that began
more than 24 hours ago, from the live API (``DERIBIT_BASE_URL``) otherwise. The currencies come
from ``mkt_platform/instruments.yaml`` (Deribit option entries).
"""

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from mkt_platform import settings
from mkt_platform.defs.deribit.contract import (
    OPTION_TRADE_LAKE_SCHEMA,
    VOLATILITY_INDEX_CONTRACT,
    VOLATILITY_INDEX_LAKE_SCHEMA,
)
from mkt_platform.defs.deribit.instruments import parse_instrument_name
from mkt_platform.defs.deribit.resources import DeribitAPIError, DeribitClient
from mkt_platform.lib import lake, raw
from mkt_platform.lib.contracts import ContractViolation
from mkt_platform.lib.instruments import option_trade_currencies, volatility_index_series

SOURCE = "deribit"
DATASET = "option_trades"
#: The live API answers only the last 24 hours; older days come from the history API.
LIVE_WINDOW = timedelta(hours=24)

COLUMN_DESCRIPTIONS = {
    "trade_id": "Deribit trade id (unique per currency).",
    "trade_seq": "Sequence number of the trade within its instrument; null when not recorded.",
    "timestamp": "Trade time (UTC, milliseconds).",
    "instrument_name": "Option as Deribit names it, e.g. BTC-7JAN22-40000-P.",
    "direction": "Taker side: buy or sell.",
    "price": "Trade price (BTC per contract).",
    "amount": "Trade size (contracts; one contract is one BTC).",
    "iv": "Implied volatility of the trade (percent); null when Deribit sends none.",
    "mark_price": "Mark price of the option at the trade (BTC); null when not sent.",
    "index_price": "BTC index price at the trade (USD).",
    "tick_direction": "Tick direction: 0 plus, 1 zero-plus, 2 minus, 3 zero-minus.",
    "expiry": "Expiry parsed from the name: 08:00 UTC on the expiry date.",
    "strike": "Strike parsed from the name (USD).",
    "option_type": "C (call) or P (put), parsed from the name.",
    "block_trade_id": "Block trade this trade is a leg of (e.g. BLOCK-135082); null on-screen.",
    "liquidation": "Liquidated side: M maker, T taker, MT both; null for ordinary trades.",
}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _day_start(partition_key: str) -> datetime:
    return datetime.fromisoformat(partition_key).replace(tzinfo=UTC)


def option_trade_day_tables(
    deribit: DeribitClient, partition_keys: list[str], now: datetime, log: object = None
) -> dict[str, pa.Table]:
    """What each closed partition's file holds when pulled at ``now``: one paginated range per
    currency over all the partitions (the history API, as for any day that began more than
    24 hours ago), split per UTC day in the order the asset writes them.

    Raises:
        ContractViolation: a page broke the trade contract (it is quarantined).
        ValueError: a partition has not closed at ``now``.
    """
    first, last = _day_start(min(partition_keys)), _day_start(max(partition_keys))
    end = last + timedelta(days=1)
    if end > now:
        raise ValueError(f"{max(partition_keys)} has not closed at {now:%Y-%m-%d %H:%M} UTC")
    per_currency = []
    for currency in option_trade_currencies():
        pages = [
            page.table
            for page in deribit.iter_option_trade_pages(
                currency, _ms(first), _ms(end) - 1, history=first < now - LIVE_WINDOW
            )
        ]
        per_currency.append(
            pa.concat_tables(pages).cast(OPTION_TRADE_LAKE_SCHEMA)
            if pages
            else OPTION_TRADE_LAKE_SCHEMA.empty_table()
        )
    trades = (
        pa.concat_tables(per_currency) if per_currency else OPTION_TRADE_LAKE_SCHEMA.empty_table()
    )
    return raw.split_days(trades, "timestamp", partition_keys)


def pull_option_trades(
    context: dg.AssetExecutionContext, deribit: DeribitClient
) -> dg.MaterializeResult:
    """Pull ``deribit_option_trades`` for the run's partitions, a day at a time, streamed."""
    currencies = option_trade_currencies()
    raw.refuse_universe_shrink(
        context.asset_key.to_user_string(),
        {pk: lake.raw_partition_path(SOURCE, DATASET, pk) for pk in context.partition_keys},
        "instrument_name",
        currencies,
        instrument_of=lambda name: name.split("-", 1)[0],
    )
    now = settings.utcnow()
    outcomes = {}
    for partition_key in context.partition_keys:
        day_start = _day_start(partition_key)
        path = lake.raw_partition_path(SOURCE, DATASET, partition_key)
        previous = lake.read_table(path) if path.exists() else None
        try:
            metadata = _pull_day(context, deribit, currencies, day_start, now)
        except ContractViolation as exc:
            raise raw.contract_failure(
                exc, context.asset_key.to_user_string(), [partition_key]
            ) from exc
        written = lake.read_table(path)
        metadata.update(
            raw.partition_written(
                path,
                previous,
                written,
                metadata["file_bytes"],
                ["trade_id"],
                "timestamp",
                COLUMN_DESCRIPTIONS,
                content_hash=metadata["content_hash"],
            )
        )
        context.add_asset_metadata(metadata, partition_key=partition_key)
        outcomes[partition_key] = raw.option_trade_quality(written, parse_instrument_name)
    return dg.MaterializeResult(
        check_results=raw.check_results(context.asset_key, "option_trades", outcomes)
    )


def _pull_day(
    context: dg.AssetExecutionContext,
    deribit: DeribitClient,
    currencies: tuple[str, ...],
    day_start: datetime,
    now: datetime,
) -> dict:
    partition_key = day_start.strftime("%Y-%m-%d")
    day_end = day_start + timedelta(days=1)
    history = day_start < now - LIVE_WINDOW
    api = "history" if history else "live"
    path = lake.raw_partition_path(SOURCE, DATASET, partition_key)
    pages = duplicates = 0
    rejected: Counter[str] = Counter()
    rejected_examples: dict[str, str] = {}
    added: set[str] = set()
    instruments: set[str] = set()
    first_ms = last_ms = None
    note = None
    with lake.StreamingPartitionWriter(path, OPTION_TRADE_LAKE_SCHEMA) as writer:
        for currency in currencies:
            if day_start > now:
                note = f"{partition_key} has not started yet: no trades, nothing requested"
                break
            try:
                for page in deribit.iter_option_trade_pages(
                    currency, _ms(day_start), _ms(day_end) - 1, history=history
                ):
                    pages += 1
                    duplicates += page.duplicates
                    added.update(page.added_fields)
                    for trade_id, name, reason in page.rejected:
                        rejected[name] += 1
                        rejected_examples.setdefault(name, f"trade {trade_id}: {reason}")
                    table = page.table
                    if table.num_rows:
                        writer.write(table)
                        instruments.update(pc.unique(table["instrument_name"]).to_pylist())
                        times = pc.cast(table["timestamp"], "int64")
                        first_ms = first_ms if first_ms is not None else pc.min(times).as_py()
                        last_ms = pc.max(times).as_py()
                    if pages % 50 == 0:
                        context.log.info(
                            f"{partition_key} {currency}: {pages} pages, {writer.rows} trades"
                        )
            except DeribitAPIError as error:
                if error.status == 400 and day_end > now:
                    # Deribit answers 400 for a range that has not happened yet.
                    note = f"{partition_key} has no trades yet (Deribit answered: {error.message})"
                    context.log.info(note)
                    continue
                raise
        # Rows that fail a blocking check never reach the lake that dbt reads.
        size = writer.commit(
            check=lambda table: raw.refuse_failing_partitions(
                context.asset_key.to_user_string(),
                f"{SOURCE}_{DATASET}",
                "option_trades",
                {partition_key: raw.option_trade_quality(table, parse_instrument_name)},
                {partition_key: table},
            )
        )
    for name, count in rejected.items():
        context.log.warning(
            f"{partition_key}: {count} trade(s) of unparseable instrument {name!r} left out "
            f"({rejected_examples[name]})"
        )
    if added:
        context.log.warning(
            f"{partition_key}: Deribit sent fields the contract lacks: {sorted(added)}"
        )
    context.log.info(
        f"{partition_key}: {writer.rows} trades of {len(instruments)} instruments in {pages} "
        f"page(s) from the {api} API"
    )
    metadata = {
        "dagster/row_count": writer.rows,
        "trades": writer.rows,
        "instruments": len(instruments),
        "pages": pages,
        "duplicates_dropped": duplicates,
        "rejected_trades": sum(rejected.values()),
        "rejected_instruments": dg.MetadataValue.json(
            {
                name: {"trades": n, "example": rejected_examples[name]}
                for name, n in rejected.items()
            }
        ),
        "added_fields": dg.MetadataValue.json(sorted(added)),
        "api": api,
        "content_hash": writer.content_hash,
        "window_closed": now >= day_end,
        "path": dg.MetadataValue.path(str(path)),
        "file_bytes": size,
    }
    if note:
        metadata["note"] = note
    if first_ms is not None:
        metadata["first_trade_time"] = dg.MetadataValue.timestamp(first_ms / 1000)
        metadata["last_trade_time"] = dg.MetadataValue.timestamp(last_ms / 1000)
    return metadata


#: Deribit's volatility index candles in the lake, column by column (units).
VOLATILITY_INDEX_COLUMNS = {
    "currency": "Currency whose index it is (BTC, ETH): DVOL, Deribit's 30-day implied volatility.",
    "resolution": "Candle resolution as Deribit spells it (1D: a UTC day; 3600: an hour).",
    **{f.name: f.description for f in VOLATILITY_INDEX_CONTRACT.fields},
}
#: Length of a DVOL candle of each resolution the platform collects, ms.
RESOLUTION_MS = {"1D": raw.DAY_MS, "3600": 3_600_000}


def volatility_index_day_tables(
    deribit: DeribitClient, partition_keys: list[str], now: datetime
) -> dict[str, pa.Table]:
    """What each partition's file holds when pulled at ``now``: the DVOL candles of every
    configured currency (Deribit option currencies) and resolution (``1D``, and ``3600``
    where the currency's ``intervals`` ask for it) that had closed by ``now``, one paged
    range per series for all the partitions, each day sorted on currency, resolution and
    candle start.

    Raises:
        ContractViolation: a page broke the candle contract (it is quarantined).
        DeribitAPIError: Deribit refused a request (the replay answers so for a resolution
            it holds no recording of).
    """
    first, last = _day_start(min(partition_keys)), _day_start(max(partition_keys))
    tables = []
    for currency, resolution in volatility_index_series():
        length = RESOLUTION_MS[resolution]
        end = last + timedelta(days=1) - timedelta(milliseconds=length)
        candles = deribit.fetch_volatility_index(currency, _ms(first), _ms(end), resolution)
        starts = pc.cast(candles["timestamp"], pa.int64())
        closed = candles.filter(pc.less_equal(pc.add(starts, length), _ms(now)))
        tables.append(
            closed.add_column(0, "currency", pa.array([currency] * closed.num_rows, pa.string()))
            .add_column(1, "resolution", pa.array([resolution] * closed.num_rows, pa.string()))
            .cast(VOLATILITY_INDEX_LAKE_SCHEMA)
        )
    rows = pa.concat_tables(tables) if tables else VOLATILITY_INDEX_LAKE_SCHEMA.empty_table()
    return raw.split_days(
        rows, "timestamp", partition_keys, ("currency", "resolution", "timestamp")
    )


def volatility_index_quality(
    day: pa.Table, partition_key: str, now: datetime, series: tuple[tuple[str, str], ...]
) -> list[Any]:
    """The ``index_candles`` checks on one day's DVOL candles, each resolution of ``series``
    (:func:`volatility_index_series`) against its own candle length and currencies, merged
    per check (examples start with the resolution)."""
    from mkt_platform.lib import quality

    by_resolution: dict[str, list[str]] = {}
    for currency, resolution in series:
        by_resolution.setdefault(resolution, []).append(currency)
    per_resolution = {
        resolution: raw.candle_quality(
            day.filter(pc.equal(day["resolution"], resolution)),
            "currency",
            currencies,
            _ms(_day_start(partition_key)),
            RESOLUTION_MS[resolution],
            _ms(now),
            volumes=(),
            time_column="timestamp",
        )
        for resolution, currencies in by_resolution.items()
    }
    names = [o.name for o in next(iter(per_resolution.values()), [])]
    return [
        quality.merge(
            name,
            {
                resolution: next(o for o in outcomes if o.name == name)
                for resolution, outcomes in per_resolution.items()
            },
        )
        for name in names
    ]


def pull_volatility_index(
    context: dg.AssetExecutionContext, deribit: DeribitClient
) -> dg.MaterializeResult:
    """Pull ``deribit_volatility_index`` (DVOL candles: daily, and hourly where configured)
    for the run's partitions."""
    key = context.asset_key.to_user_string()
    series = volatility_index_series()
    raw.refuse_universe_shrink(
        key,
        {
            pk: lake.raw_partition_path(SOURCE, "volatility_index", pk)
            for pk in context.partition_keys
        },
        ("currency", "resolution"),
        [f"{currency} {resolution}" for currency, resolution in series],
    )
    pulled_at = settings.utcnow()
    try:
        days = volatility_index_day_tables(deribit, context.partition_keys, pulled_at)
    except ContractViolation as exc:
        raise raw.contract_failure(exc, key, context.partition_keys) from exc
    except DeribitAPIError as exc:
        raise dg.Failure(
            description=(
                f"{key}: Deribit refused the volatility index request for partitions "
                f"{min(context.partition_keys)}..{max(context.partition_keys)}: {exc}. Nothing "
                "was written."
            )
        ) from exc
    outcomes = {
        pk: volatility_index_quality(day, pk, pulled_at, series) for pk, day in days.items()
    }
    raw.refuse_failing_partitions(
        key, f"{SOURCE}_volatility_index", "index_candles", outcomes, days
    )
    currencies = sorted({currency for currency, _ in series})
    for pk, day in days.items():
        counts = {c: day.filter(pc.equal(day["currency"], c)).num_rows for c in currencies}
        per_resolution = {
            r: day.filter(pc.equal(day["resolution"], r)).num_rows
            for r in dict.fromkeys(resolution for _, resolution in series)
        }
        metadata = {
            "rows_per_instrument": dg.MetadataValue.json(counts),
            "rows_per_resolution": dg.MetadataValue.json(per_resolution),
            "window_closed": pulled_at >= _day_start(pk) + timedelta(days=1),
        }
        if day.num_rows:
            metadata["last_open_time"] = dg.MetadataValue.timestamp(
                pc.max(day["timestamp"]).as_py()
            )
        metadata.update(
            raw.write_partition(
                lake.raw_partition_path(SOURCE, "volatility_index", pk),
                day,
                ["currency", "resolution", "timestamp"],
                "timestamp",
                VOLATILITY_INDEX_COLUMNS,
            )
        )
        context.add_asset_metadata(metadata, partition_key=pk)
    return dg.MaterializeResult(
        check_results=raw.check_results(context.asset_key, "index_candles", outcomes)
    )
