"""Raw Polygon assets, one Parquet file per NYSE trading day: SPY's minute bars, the SPY
options contracts near the money at the open, those contracts' minute bars, and SPY's news.

Source: ``GET /v2/aggs/ticker/SPY/range/1/minute/{from}/{to}`` (see ``resources.py``). A
trading day's bars run from 04:00 to 20:00 New York time: the extended hours are kept here,
in raw; the regular session (09:30-16:00, or 13:00 on an early close) is the marts' business.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from mkt_platform import settings
from mkt_platform.defs.polygon.contract import (
    AGG_CONTRACT,
    AGGS_LAKE_SCHEMA,
    NEWS_CONTRACT,
    OPTIONS_CONTRACT_CONTRACT,
    OPTIONS_CONTRACTS_LAKE_SCHEMA,
)
from mkt_platform.defs.polygon.resources import PolygonClient, PolygonSettingError
from mkt_platform.lib import equity_calendar, lake, raw
from mkt_platform.lib.alerts import Alert, send_alert
from mkt_platform.lib.contracts import PRICE, ContractViolation

SOURCE = "polygon"
#: The ticker of ``polygon_spy_aggs_1m``.
SPY = "SPY"
#: Polygon's ticker of the Cboe Volatility Index (``polygon_vix_aggs_1m``).
VIX = "I:VIX"
MINUTE_MS = 60_000
EIGHT_DP = Decimal("0.00000001")

AGGS_COLUMNS = {
    "ticker": "Polygon ticker (SPY, I:VIX).",
    **{f.name: f.description for f in AGG_CONTRACT.fields},
}


def ny_dates(table: pa.Table) -> pa.Array:
    """The New York date (``YYYY-MM-DD``) of each bar of ``table``, vectorized."""
    in_new_york = table["bar_time"].cast(pa.timestamp("ms", tz="America/New_York"))
    return pc.strftime(in_new_york, format="%Y-%m-%d")


def aggs_1m_pull(ticker: str, dataset: str) -> Callable[..., dg.MaterializeResult]:
    """The pull of a ticker's minute bars (``polygon_<dataset>``) for the run's trading days:
    one paged range of minute bars (``GET /v2/aggs/ticker/{ticker}/range/1/minute/{first}/
    {last}``), split per New York date, checked, and each day written whole, under the late
    data rule (:func:`guard_late_data`) and the slow-write alert (:func:`timed_write`).

    The returned function raises ``dagster.Failure`` for no API key, an answer that broke its
    contract (quarantined; nothing written), or a blocking check failed (nothing written).
    """

    def pull(context: dg.AssetExecutionContext, polygon: PolygonClient) -> dg.MaterializeResult:
        key = context.asset_key.to_user_string()
        days = context.partition_keys
        context.log.info(
            f"pulling {ticker} minute bars for {len(days)} trading day(s), {days[0]}..{days[-1]}"
        )
        try:
            bars = polygon.fetch_aggregates(ticker, 1, "minute", days[0], days[-1])
        except PolygonSettingError as exc:
            raise dg.Failure(f"{key} {days[0]}..{days[-1]}: {exc}") from exc
        except ContractViolation as exc:
            raise raw.contract_failure(exc, key, days) from exc
        synthetic = synthetic_label(bars)
        if synthetic:
            context.log.warning(f"the server marked these bars SYNTHETIC: {synthetic}")
        dates = ny_dates(bars)
        tables = {day: bars.filter(pc.equal(dates, day)) for day in days}
        outcomes = {day: raw.equity_bar_quality(table) for day, table in tables.items()}
        raw.refuse_failing_partitions(key, f"{SOURCE}_{dataset}", "equity_bars", outcomes, tables)
        for day, table in tables.items():
            session = equity_calendar.session(date.fromisoformat(day))
            metadata: dict[str, Any] = {
                "window_closed": day_complete(day),
                "bars": table.num_rows,
                "extended_hours_bars": table.num_rows - _session_bars(table, session),
                "session_open": session.open.isoformat() if session else None,
                "session_close": session.close.isoformat() if session else None,
                "is_early_close": bool(session and session.is_early_close),
            }
            if synthetic:
                metadata["SYNTHETIC"] = synthetic
                table = table.replace_schema_metadata(
                    {**(table.schema.metadata or {}), b"synthetic": synthetic.encode()}
                )
            path = lake.raw_partition_path(SOURCE, dataset, day)
            kept, late = guard_late_data(context, key, day, path, table, ["ticker", "bar_time"])
            written = (
                {} if kept is None else timed_write(context, key, day, path, kept, AGGS_COLUMNS)
            )
            context.add_asset_metadata({**metadata, **late, **written}, partition_key=day)
        return dg.MaterializeResult(
            check_results=raw.check_results(context.asset_key, "equity_bars", outcomes)
        )

    pull.__name__ = f"pull_{dataset}"
    return pull


pull_spy_aggs_1m = aggs_1m_pull(SPY, "spy_aggs_1m")
pull_vix_aggs_1m = aggs_1m_pull(VIX, "vix_aggs_1m")


#: When a trading day's minute bars are complete: the end of the extended hours, New York time.
EXTENDED_HOURS_END = 20


def day_complete(day: str) -> bool:
    """Whether trading day ``day``'s minute bars are all in (``now`` is past 20:00 New York
    time that day, the end of the extended hours): the freshness rules' ``window_closed``."""
    moment = date.fromisoformat(day)
    end = datetime(
        moment.year, moment.month, moment.day, EXTENDED_HOURS_END, tzinfo=equity_calendar.NEW_YORK
    )
    return settings.utcnow() >= end


def synthetic_label(table: pa.Table) -> str | None:
    """What the server said of SYNTHETIC data in ``table`` (the client keeps the
    ``X-Replay-Synthetic`` header of its answers in the schema metadata), or ``None``."""
    value = (table.schema.metadata or {}).get(b"synthetic")
    return value.decode() if value else None


def guard_late_data(
    context: dg.AssetExecutionContext,
    key: str,
    day: str,
    path: lake.LakePath,
    table: pa.Table,
    keys: list[str],
) -> tuple[pa.Table | None, dict[str, Any]]:
    """The replaced system's late-data rule for a trading day older than the current one
    (New York time) whose file is already in the lake: bars that are new, changed or
    withdrawn since are late data. By default (``MKT_POLYGON_LATE_DATA=reject``) they are
    rejected: the file stays as it was, and a warning alert names the day and the count;
    with ``accept`` the day is rewritten. A first pull of a past day is a backfill, never late.

    Returns:
        ``(the table to write, or None to keep the file; metadata: late_bars and verdict)``.
    """
    today = settings.utcnow().astimezone(equity_calendar.NEW_YORK).date()
    if date.fromisoformat(day) >= today or not path.exists():
        return table, {}
    previous = lake.read_table(path)
    late = _changed_rows(previous, table, keys)
    if not late:
        return table, {"late_bars": 0}
    policy = settings.polygon_late_data()
    verdict = "accepted" if policy == "accept" else "rejected"
    send_alert(
        Alert(
            kind="late_data",
            summary=(
                f"{late} late bar(s) for closed trading day {day} {verdict} "
                f"(MKT_POLYGON_LATE_DATA={policy})"
            ),
            asset_key=key,
            details={"partition": day, "late_bars": late, "policy": policy},
            severity="warning",
        ),
        context.log,
    )
    return (table if policy == "accept" else None), {"late_bars": late, "late_data": verdict}


def _changed_rows(previous: pa.Table, table: pa.Table, keys: list[str]) -> int:
    """How many bars, by ``keys``, differ between ``previous`` and ``table``: new in
    ``table``, changed in it, or withdrawn from it (in ``previous`` only). The columns
    compared are those both tables hold."""
    names = [n for n in table.column_names if n in previous.column_names]

    def by_key(rows: pa.Table) -> dict[tuple, tuple]:
        records = rows.select(names).to_pylist()
        return {tuple(r[k] for k in keys): tuple(r[n] for n in names) for r in records}

    old, new = by_key(previous), by_key(table)
    changed = sum(1 for key, row in new.items() if old.get(key) != row)
    return changed + sum(1 for key in old if key not in new)


def timed_write(
    context: dg.AssetExecutionContext,
    key: str,
    day: str,
    path: lake.LakePath,
    table: pa.Table,
    columns: dict[str, str],
) -> dict[str, Any]:
    """Write a trading day's partition (atomically, :func:`raw.write_partition`) and alert
    when the write took longer than ``MKT_SLOW_WRITE_SECONDS`` (300): the replaced system's
    alert on a commit over 5 minutes (a slow disk or object store)."""
    started = time.monotonic()
    written = raw.write_partition(path, table, ["ticker", "bar_time"], "bar_time", columns)
    seconds = time.monotonic() - started
    limit = settings.slow_write_seconds()
    if seconds > limit:
        send_alert(
            Alert(
                kind="slow_write",
                summary=f"writing partition {day} took {seconds:.1f} s (limit {limit} s)",
                asset_key=key,
                details={"partition": day, "seconds": round(seconds, 3), "limit_seconds": limit},
                severity="warning",
            ),
            context.log,
        )
    return {**written, "write_seconds": round(seconds, 3)}


def _in_session(table: pa.Table, session: equity_calendar.Session) -> pa.ChunkedArray:
    """Which of ``table``'s bars (``bar_time``) start within the regular session
    ``[open, close)``: a boolean per row."""
    times = pc.cast(table["bar_time"], pa.int64())
    opened, closed = int(session.open.timestamp() * 1000), int(session.close.timestamp() * 1000)
    return pc.and_(pc.greater_equal(times, opened), pc.less(times, closed))


def _session_bars(table: pa.Table, session: equity_calendar.Session | None) -> int:
    if session is None or not table.num_rows:
        return 0
    return pc.sum(_in_session(table, session)).as_py() or 0


CONTRACTS_COLUMNS = {
    **{f.name: f.description for f in OPTIONS_CONTRACT_CONTRACT.fields},
    "as_of": "The trading day the contract was listed and selected on (New York date).",
    "underlying_open": "SPY's open that day: the open of its first regular-session bar (USD).",
    "moneyness_at_open": "strike_price / underlying_open, rounded to 8 decimals.",
}
OPTION_AGGS_COLUMNS = {
    "ticker": "Option ticker (O:SPY250902C00625000).",
    **{
        f.name: f.description.replace("(shares or contracts)", "(contracts)")
        for f in AGG_CONTRACT.fields
    },
}


def session_open_price(day: str) -> tuple[Decimal, datetime]:
    """SPY's open on trading day ``day``: the open of its first bar in the regular session
    (09:30 New York time, or the first minute that traded after it), read from the lake file
    of ``polygon_spy_aggs_1m``.

    Returns:
        ``(open in USD, that bar's start in UTC)``.

    Raises:
        dagster.Failure: ``day`` is no trading day, SPY's bars of the day are not in the lake,
            or none falls in the regular session.
    """
    session = equity_calendar.session(date.fromisoformat(day))
    where = f"polygon_spy_options_contracts {day}"
    if session is None:
        raise dg.Failure(f"{where}: {day} is no NYSE trading day")
    path = lake.raw_partition_path(SOURCE, "spy_aggs_1m", day)
    if not path.exists():
        raise dg.Failure(
            f"{where}: SPY's minute bars of {day} are not in the lake (polygon_spy_aggs_1m "
            "must be materialized first: the band is around the day's open)"
        )
    bars = lake.read_table(path, ["bar_time", "open"])
    inside = bars.filter(_in_session(bars, session))
    if not inside.num_rows:
        raise dg.Failure(
            f"{where}: field open: SPY has no bar in the regular session "
            f"{session.open.isoformat()}..{session.close.isoformat()} of {day}"
        )
    first = inside.sort_by("bar_time").slice(0, 1).to_pylist()[0]
    return first["open"], first["bar_time"]


def select_contracts(
    contracts: pa.Table, underlying_open: Decimal, limit: int
) -> tuple[pa.Table, int]:
    """The ``limit`` contracts nearest the money (by ``|strike - open|``, the order of
    ``|strike / open - 1|`` computed exactly, then expiry, strike and type), in the listing's
    order (expiry, strike, type), and how many were left out. (The quotient, rounded at
    Decimal's 28 digits, told apart strikes equally far from the open, 600 and 601 around
    600.50, so the tie rule never applied.)"""
    rows = contracts.to_pylist()
    ranked = sorted(
        range(len(rows)),
        key=lambda i: (
            abs(rows[i]["strike_price"] - underlying_open),
            rows[i]["expiration_date"],
            rows[i]["strike_price"],
            rows[i]["contract_type"],
        ),
    )
    kept = sorted(ranked[:limit])
    return contracts.take(pa.array(kept, pa.int64())), len(rows) - len(kept)


def pull_spy_options_contracts(
    context: dg.AssetExecutionContext, polygon: PolygonClient
) -> dg.MaterializeResult:
    """Pull ``polygon_spy_options_contracts`` for the run's trading days: the SPY options
    listed that day (``as_of``) with strikes within ``MKT_POLYGON_OPTIONS_BAND_PCT`` (1 %) of
    the day's open and expiring within ``MKT_POLYGON_OPTIONS_EXPIRY_DAYS`` (7) calendar days,
    at most ``MKT_POLYGON_OPTIONS_MAX_CONTRACTS`` (100, nearest the money first). Source:
    ``GET /v3/reference/options/contracts``.

    Raises:
        dagster.Failure: no API key, SPY's bars of the day missing, an answer that broke its
            contract (quarantined; nothing written), or a setting out of range.
    """
    key = context.asset_key.to_user_string()
    band = settings.polygon_options_band_pct()
    horizon = settings.polygon_options_expiry_days()
    limit = settings.polygon_options_max_contracts()
    for day in context.partition_keys:
        underlying_open, opened_at = session_open_price(day)
        low = underlying_open * (1 - band / 100)
        high = underlying_open * (1 + band / 100)
        last_expiry = (date.fromisoformat(day) + timedelta(days=horizon)).isoformat()
        try:
            listed = polygon.fetch_options_contracts(SPY, day, day, last_expiry, low, high)
        except PolygonSettingError as exc:
            raise dg.Failure(f"{key} {day}: {exc}") from exc
        except ContractViolation as exc:
            raise raw.contract_failure(exc, key, [day]) from exc
        chosen, dropped = select_contracts(listed, underlying_open, limit)
        n = chosen.num_rows
        moneyness = [
            (strike / underlying_open).quantize(EIGHT_DP, rounding=ROUND_HALF_EVEN)
            for strike in chosen["strike_price"].to_pylist()
        ]
        table = (
            chosen.set_column(
                chosen.schema.get_field_index("expiration_date"),
                "expiration_date",
                pc.cast(pc.strptime(chosen["expiration_date"], "%Y-%m-%d", "s"), pa.date32()),
            )
            .append_column("as_of", pa.array([date.fromisoformat(day)] * n, pa.date32()))
            .append_column("underlying_open", pa.array([underlying_open] * n, PRICE))
            .append_column("moneyness_at_open", pa.array(moneyness, PRICE))
            .cast(OPTIONS_CONTRACTS_LAKE_SCHEMA)
        )
        if dropped:
            context.log.warning(
                f"{day}: {listed.num_rows} contracts in the band, {dropped} furthest from "
                f"the money left out (MKT_POLYGON_OPTIONS_MAX_CONTRACTS={limit})"
            )
        context.log.info(
            f"{key} {day}: SPY opened at {underlying_open} ({opened_at.isoformat()}); "
            f"{n} contracts with strikes {low:.4f}..{high:.4f}, expiring {day}..{last_expiry}"
        )
        path = lake.raw_partition_path(SOURCE, "spy_options_contracts", day)
        written = raw.write_partition(path, table, ["ticker"], None, CONTRACTS_COLUMNS)
        expiries = sorted({str(d) for d in table["expiration_date"].to_pylist()})
        context.add_asset_metadata(
            {
                "contracts": n,
                "contracts_left_out": dropped,
                "underlying_open": float(underlying_open),
                "band_pct": float(band),
                "strike_min": float(low),
                "strike_max": float(high),
                "expirations": ", ".join(expiries),
                **written,
            },
            partition_key=day,
        )
    return dg.MaterializeResult()


def pull_spy_options_aggs_1m(
    context: dg.AssetExecutionContext, polygon: PolygonClient
) -> dg.MaterializeResult:
    """Pull ``polygon_spy_options_aggs_1m`` for the run's trading days: the minute bars of
    each contract of ``polygon_spy_options_contracts`` that day (one request per contract,
    ``GET /v2/aggs/ticker/O:.../range/1/minute/{day}/{day}``), checked, one file per day.
    A minute without a trade has no bar; a contract that never traded has none at all.

    Raises:
        dagster.Failure: the day's contracts not in the lake, no API key, an answer that broke
            its contract (quarantined; nothing written), or a blocking check failed.
    """
    key = context.asset_key.to_user_string()
    tables: dict[str, pa.Table] = {}
    traded: dict[str, int] = {}
    for day in context.partition_keys:
        path = lake.raw_partition_path(SOURCE, "spy_options_contracts", day)
        if not path.exists():
            raise dg.Failure(
                f"{key} {day}: the day's contracts are not in the lake "
                "(polygon_spy_options_contracts must be materialized first)"
            )
        tickers = lake.read_table(path, ["ticker"])["ticker"].to_pylist()
        context.log.info(f"{key} {day}: minute bars of {len(tickers)} contracts")
        pulled = []
        for index, ticker in enumerate(tickers, 1):
            try:
                bars = polygon.fetch_aggregates(ticker, 1, "minute", day, day)
            except PolygonSettingError as exc:
                raise dg.Failure(f"{key} {day}: {exc}") from exc
            except ContractViolation as exc:
                raise raw.contract_failure(exc, key, [day]) from exc
            pulled.append(bars.filter(pc.equal(ny_dates(bars), day)))
            if index % 25 == 0 or index == len(tickers):
                context.log.info(f"{key} {day}: {index}/{len(tickers)} contracts pulled")
        table = pa.concat_tables(pulled) if pulled else AGGS_LAKE_SCHEMA.empty_table()
        tables[day] = table.sort_by([("ticker", "ascending"), ("bar_time", "ascending")])
        traded[day] = sum(1 for t in pulled if t.num_rows)
    outcomes = {day: raw.equity_bar_quality(table) for day, table in tables.items()}
    raw.refuse_failing_partitions(
        key, f"{SOURCE}_spy_options_aggs_1m", "equity_bars", outcomes, tables
    )
    for day, table in tables.items():
        path = lake.raw_partition_path(SOURCE, "spy_options_aggs_1m", day)
        kept, late = guard_late_data(context, key, day, path, table, ["ticker", "bar_time"])
        written = (
            {} if kept is None else timed_write(context, key, day, path, kept, OPTION_AGGS_COLUMNS)
        )
        context.add_asset_metadata(
            {
                "window_closed": day_complete(day),
                "bars": table.num_rows,
                "contracts_with_bars": traded[day],
                **late,
                **written,
            },
            partition_key=day,
        )
    return dg.MaterializeResult(
        check_results=raw.check_results(context.asset_key, "equity_bars", outcomes)
    )


NEWS_COLUMNS = {
    "ticker": "The ticker the news was asked for (SPY).",
    **{f.name: f.description for f in NEWS_CONTRACT.fields},
}
NEWS_COLUMNS["published_utc"] = "Publication time (UTC)."


def pull_news(context: dg.AssetExecutionContext, polygon: PolygonClient) -> dg.MaterializeResult:
    """Pull ``polygon_news`` for the run's trading days: SPY's news published in each
    partition's window (from the trading day's New York midnight to the next trading day's, so
    a weekend's news belongs to Friday), with the sentiment of Polygon's ``insights`` on SPY.
    Source: ``GET /v2/reference/news``.

    Raises:
        dagster.Failure: no API key, or an answer that broke its contract (quarantined;
            nothing written).
    """
    key = context.asset_key.to_user_string()
    for day in context.partition_keys:
        start, end = equity_calendar.trading_day_window(date.fromisoformat(day))
        try:
            table = polygon.fetch_news(SPY, start, end)
        except PolygonSettingError as exc:
            raise dg.Failure(f"{key} {day}: {exc}") from exc
        except ContractViolation as exc:
            raise raw.contract_failure(exc, key, [day]) from exc
        synthetic = synthetic_label(table)
        metadata: dict[str, Any] = {
            "window_closed": settings.utcnow() >= end,
            "articles": table.num_rows,
            "with_sentiment": table.num_rows - table["sentiment"].null_count,
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
        }
        if synthetic:
            context.log.warning(f"{day}: the server marked these articles SYNTHETIC: {synthetic}")
            metadata["SYNTHETIC"] = synthetic
        path = lake.raw_partition_path(SOURCE, "news", day)
        written = raw.write_partition(path, table, ["id"], "published_utc", NEWS_COLUMNS)
        context.add_asset_metadata({**metadata, **written}, partition_key=day)
    return dg.MaterializeResult()
