"""Raw Hyperliquid assets: 1h and 1m candles, funding rates (daily UTC partitions) and
snapshots of the asset contexts (open interest, mark, oracle and mid price), all as Parquet in
the lake.

Source: ``POST /info`` (see ``resources.py``). The instruments come from
``mkt_platform/instruments.yaml``: every Hyperliquid instrument listing ``1h`` gets 1h
candles, every perp listing ``1m`` gets 1m candles (Hyperliquid serves only the most recent
5,000 candles of an interval: 1m candles reach back about 3.5 days); every Hyperliquid perp
gets funding rates and asset contexts.
"""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from mkt_platform import settings
from mkt_platform.defs.hyperliquid.contract import (
    ASSET_CTX_LAKE_SCHEMA,
    CANDLE_LAKE_SCHEMA,
    FUNDING_LAKE_SCHEMA,
    INTERVAL_MS,
)
from mkt_platform.defs.hyperliquid.resources import HyperliquidClient
from mkt_platform.lib import lake, raw
from mkt_platform.lib.contracts import ContractViolation
from mkt_platform.lib.gaps import format_range, missing_ranges
from mkt_platform.lib.instruments import funding_instruments, symbols_for

SOURCE = "hyperliquid"
DAY_MS = raw.DAY_MS


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _day_start(partition_key: str) -> datetime:
    return datetime.fromisoformat(partition_key).replace(tzinfo=UTC)


CANDLE_COLUMNS = {
    "coin": "Instrument as Hyperliquid spells it (BTC, @107).",
    "open_time": "Candle open time (UTC).",
    "close_time": "Candle close time (UTC), open + interval - 1 ms.",
    "interval": "Candle interval (1h or 1m).",
    "open": "First trade price (quote currency).",
    "high": "Highest trade price (quote currency).",
    "low": "Lowest trade price (quote currency).",
    "close": "Last trade price (quote currency).",
    "volume": "Traded volume (base currency).",
    "trades": "Number of trades; null in the replay's freqtrade recordings (not kept).",
}
FUNDING_COLUMNS = {
    "coin": "Perp coin (BTC).",
    "time": "Funding time (UTC), as sent (with millisecond jitter).",
    "funding_rate": "Rate paid for the funding interval (fraction, e.g. 0.0000125).",
    "premium": (
        "Premium of the mark over the oracle price (fraction); null in the replay's "
        "freqtrade recordings (not kept)."
    ),
}


def candle_coins(interval: str = "1h") -> tuple[str, ...]:
    """The instruments whose ``interval`` candles are pulled: for 1h, perps then spot pairs
    (``@107``); for 1m, the perps listing it (the ones whose captured minutes a REST pull
    can backfill)."""
    if interval == "1m":
        return symbols_for(SOURCE, "perp", "1m")
    return symbols_for(SOURCE, "perp", interval) + symbols_for(SOURCE, "spot", interval)


def candle_day_tables(
    hyperliquid: HyperliquidClient,
    partition_keys: list[str],
    now: datetime,
    log: Any = None,
    added: set[str] | None = None,
    interval: str = "1h",
) -> dict[str, pa.Table]:
    """The ``interval`` candles each partition's file holds when pulled at ``now``: one
    paginated range per coin over all the partitions, candles not closed by ``now`` left
    out, each day sorted on (coin, open time).

    Raises:
        ContractViolation: a page broke the candle contract (it is quarantined).
    """
    return _day_tables(
        hyperliquid,
        candle_coins(interval),
        lambda coin, start_ms, end_ms: hyperliquid.fetch_candles(coin, interval, start_ms, end_ms),
        CANDLE_LAKE_SCHEMA,
        "open_time",
        partition_keys,
        f"{interval} candles",
        log,
        added,
        keep=lambda candles: pc.less(pc.cast(candles["close_time"], pa.int64()), _ms(now)),
    )


def funding_day_tables(
    hyperliquid: HyperliquidClient,
    partition_keys: list[str],
    now: datetime,
    log: Any = None,
    added: set[str] | None = None,
) -> dict[str, pa.Table]:
    """The funding records each partition's file holds: one paginated range per perp over
    all the partitions, each day sorted on (coin, time). ``now`` is unused (funding records
    are final when sent) but kept for the late-data sensor's common signature.

    Raises:
        ContractViolation: a page broke the funding contract (it is quarantined).
    """
    return _day_tables(
        hyperliquid,
        funding_instruments(SOURCE),
        hyperliquid.fetch_funding_history,
        FUNDING_LAKE_SCHEMA,
        "time",
        partition_keys,
        "funding records",
        log,
        added,
    )


def _day_tables(
    hyperliquid: HyperliquidClient,
    coins: Sequence[str],
    fetch: Callable[[str, int, int], pa.Table],
    schema: pa.Schema,
    time_column: str,
    partition_keys: list[str],
    what: str,
    log: Any = None,
    added: set[str] | None = None,
    keep: Callable[[pa.Table], pa.ChunkedArray] | None = None,
) -> dict[str, pa.Table]:
    """Pull one range per coin covering all the partitions, then split it per UTC day.

    Args:
        hyperliquid: the client ``fetch`` calls; its ``last_added_fields`` are read after
            each fetch.
        coins: the coins to pull, in order.
        fetch: ``(coin, start_ms, end_ms) -> table`` for an inclusive range of epoch
            milliseconds (one of the client's paginated ``fetch_*`` methods).
        schema: the lake schema every coin's table is cast to.
        time_column: the timestamp column that places a row in a UTC day; each day is
            sorted on (``coin``, ``time_column``).
        partition_keys: the UTC days (``YYYY-MM-DD``) to return.
        what: what the rows are, for the log line per coin (``"candles"``).
        log: a logger whose ``info`` gets one line per coin, or None.
        added: if given, gains the undeclared fields the exchange sent.
        keep: if given, a row mask over the pulled table (e.g. closed candles only),
            applied before the split.

    Returns:
        Each partition key's table, days with no row included (empty, with ``schema``).

    Raises:
        ContractViolation: a page broke the contract (it is quarantined).
    """
    first, last = _day_start(min(partition_keys)), _day_start(max(partition_keys))
    tables = []
    for coin in coins:
        pulled = fetch(coin, _ms(first), _ms(last + timedelta(days=1)) - 1)
        if added is not None:
            added.update(hyperliquid.last_added_fields)
        if log is not None:
            log.info(f"{coin}: {pulled.num_rows} {what}")
        tables.append(pulled.cast(schema))
    rows = pa.concat_tables(tables) if tables else schema.empty_table()
    if keep is not None:
        rows = rows.filter(keep(rows))
    return raw.split_days(rows, time_column, partition_keys, ("coin", time_column))


def _write(
    partition_key: str,
    dataset: str,
    table: pa.Table,
    metadata: dict,
    keys: list[str] | None = None,
    time_column: str | None = None,
    descriptions: dict[str, str] | None = None,
) -> dict:
    path = lake.raw_partition_path(SOURCE, dataset, partition_key)
    return {**metadata, **raw.write_partition(path, table, keys, time_column, descriptions)}


def _warn_added(context: dg.AssetExecutionContext, added: list[str], what: str) -> list:
    if added:
        context.log.warning(f"{what}: Hyperliquid sent fields the contract lacks: {added}")
    return added


def _pull_days(
    context: dg.AssetExecutionContext,
    key: dg.AssetKey,
    dataset: str,
    what: str,
    coins: list[str],
    day_tables: Callable[..., dict[str, pa.Table]],
    hyperliquid: HyperliquidClient,
    pulled_at: datetime,
) -> tuple[dict[str, pa.Table], list[str]]:
    """The run's days of one dataset (``candle_day_tables`` or ``funding_day_tables``), with
    the fields Hyperliquid added (logged as a warning), and a progress line first.

    Raises:
        dagster.Failure: a partition holds coins the universe no longer lists (see
            :func:`raw.refuse_universe_shrink`), or a payload broke its contract (see
            :func:`raw.contract_failure`).
    """
    raw.refuse_universe_shrink(
        key.to_user_string(),
        {pk: lake.raw_partition_path(SOURCE, dataset, pk) for pk in context.partition_keys},
        "coin",
        coins,
    )
    window = context.partition_time_window
    context.log.info(
        f"pulling {what} of {', '.join(coins) or 'no instrument'} for "
        f"{len(context.partition_keys)} partition(s), {window.start:%Y-%m-%d} to "
        f"{window.end:%Y-%m-%d} UTC"
    )
    added_fields: set[str] = set()
    try:
        days = day_tables(hyperliquid, context.partition_keys, pulled_at, context.log, added_fields)
    except ContractViolation as exc:
        raise raw.contract_failure(exc, key.to_user_string(), context.partition_keys) from exc
    return days, _warn_added(context, sorted(added_fields), what)


def pull_candles_1h(
    context: dg.AssetExecutionContext, hyperliquid: HyperliquidClient
) -> dg.MaterializeResult:
    """Pull ``hyperliquid_candles_1h`` for the run's partitions (see ``datasets.py``)."""
    return _pull_candles(context, hyperliquid, "1h")


def pull_candles_1m(
    context: dg.AssetExecutionContext, hyperliquid: HyperliquidClient
) -> dg.MaterializeResult:
    """Pull ``hyperliquid_candles_1m`` for the run's partitions (see ``datasets.py``)."""
    return _pull_candles(context, hyperliquid, "1m")


def _pull_candles(
    context: dg.AssetExecutionContext, hyperliquid: HyperliquidClient, interval: str
) -> dg.MaterializeResult:
    """Pull ``hyperliquid_candles_<interval>`` for the run's partitions: write each day,
    with its rows and missing candles per coin as metadata, and its quality checks."""
    coins = candle_coins(interval)
    dataset = f"candles_{interval}"
    pulled_at = settings.utcnow()
    interval_ms = INTERVAL_MS[interval]
    days, added = _pull_days(
        context,
        context.asset_key,
        dataset,
        f"{interval} candles",
        list(coins),
        partial(candle_day_tables, interval=interval),
        hyperliquid,
        pulled_at,
    )
    outcomes = {
        pk: raw.candle_quality(day, "coin", coins, _ms(_day_start(pk)), interval_ms, _ms(pulled_at))
        for pk, day in days.items()
    }
    # Rows that fail a blocking check never reach the lake that dbt reads.
    raw.refuse_failing_partitions(
        context.asset_key.to_user_string(), f"{SOURCE}_{dataset}", "candles", outcomes, days
    )
    for partition_key, day in days.items():
        start_ms = _ms(_day_start(partition_key))
        expected = min(DAY_MS, max(0, _ms(pulled_at) - start_ms)) // interval_ms
        rows, missing = {}, {}
        for coin in coins:
            opens = set(
                pc.cast(
                    day.filter(pc.equal(day["coin"], coin))["open_time"], pa.int64()
                ).to_pylist()
            )
            rows[coin] = len(opens)
            gaps = missing_ranges(opens, start_ms, start_ms + expected * interval_ms, interval_ms)
            if gaps:
                missing[coin] = [format_range(*g) for g in gaps]
        metadata = {
            "rows_per_instrument": dg.MetadataValue.json(rows),
            "expected_candles": expected * len(coins),
            "missing_candles": dg.MetadataValue.json(missing),
            "added_fields": dg.MetadataValue.json(added),
            "window_closed": pulled_at >= _day_start(partition_key) + timedelta(days=1),
        }
        if day.num_rows:
            metadata["last_open_time"] = dg.MetadataValue.timestamp(
                pc.max(day["open_time"]).as_py()
            )
        context.add_asset_metadata(
            _write(
                partition_key,
                dataset,
                day,
                metadata,
                ["coin", "open_time"],
                "open_time",
                CANDLE_COLUMNS,
            ),
            partition_key=partition_key,
        )
    return dg.MaterializeResult(
        check_results=raw.check_results(context.asset_key, "candles", outcomes)
    )


def pull_funding_rates(
    context: dg.AssetExecutionContext, hyperliquid: HyperliquidClient
) -> dg.MaterializeResult:
    """Pull ``hyperliquid_funding_rates`` for the run's partitions (see ``datasets.py``)."""
    coins = funding_instruments(SOURCE)
    pulled_at = settings.utcnow()
    days, added = _pull_days(
        context,
        context.asset_key,
        "funding_rates",
        "funding history",
        coins,
        funding_day_tables,
        hyperliquid,
        pulled_at,
    )
    outcomes = {pk: raw.funding_quality(day) for pk, day in days.items()}
    raw.refuse_failing_partitions(
        context.asset_key.to_user_string(), f"{SOURCE}_funding_rates", "funding", outcomes, days
    )
    for partition_key, day in days.items():
        counts = {coin: day.filter(pc.equal(day["coin"], coin)).num_rows for coin in coins}
        metadata = {
            "rows_per_instrument": dg.MetadataValue.json(counts),
            "window_closed": pulled_at >= _day_start(partition_key) + timedelta(days=1),
            "added_fields": dg.MetadataValue.json(added),
        }
        if day.num_rows:
            metadata["last_funding_time"] = dg.MetadataValue.timestamp(pc.max(day["time"]).as_py())
        context.add_asset_metadata(
            _write(
                partition_key,
                "funding_rates",
                day,
                metadata,
                ["coin", "time"],
                "time",
                FUNDING_COLUMNS,
            ),
            partition_key=partition_key,
        )
    return dg.MaterializeResult(
        check_results=raw.check_results(context.asset_key, "funding", outcomes)
    )


def snapshot_asset_contexts(
    context: dg.AssetExecutionContext, hyperliquid: HyperliquidClient
) -> dg.MaterializeResult:
    """Append one snapshot to today's ``hyperliquid_asset_contexts`` partition."""
    now, today = raw.snapshot_moment(context, "Hyperliquid keeps no history of asset contexts")
    coins = set(symbols_for(SOURCE, "perp"))
    contexts = hyperliquid.fetch_asset_contexts()
    added = _warn_added(context, list(hyperliquid.last_added_fields), "asset contexts")
    contexts = contexts.filter(pc.is_in(contexts["coin"], pa.array(sorted(coins))))
    absent = sorted(coins - set(contexts["coin"].to_pylist()))
    if absent:
        context.log.warning(f"coins not in Hyperliquid's perp universe: {absent}")
    snapshot = contexts.cast(ASSET_CTX_LAKE_SCHEMA).add_column(
        0, "snapshot_time", pa.array([now] * contexts.num_rows, pa.timestamp("ms", tz="UTC"))
    )
    path = lake.raw_partition_path(SOURCE, "asset_contexts", today)
    day, written = raw.append_snapshot(path, snapshot, ["snapshot_time", "coin"])
    return dg.MaterializeResult(
        metadata={
            "snapshot_time": dg.MetadataValue.timestamp(now),
            "coins": dg.MetadataValue.json(sorted(contexts["coin"].to_pylist())),
            "snapshots_today": len(set(day["snapshot_time"].to_pylist())),
            "added_fields": dg.MetadataValue.json(added),
            **written,
        }
    )
