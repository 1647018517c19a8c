"""Raw Polygon assets: SPY's minute bars, one Parquet file per NYSE trading day.

Source: ``GET /v2/aggs/ticker/SPY/range/1/minute/{from}/{to}`` (see ``resources.py``). A
trading day's bars run from 04:00 to 20:00 New York time: the extended hours are kept here,
in raw; the regular session (09:30-16:00, or 13:00 on an early close) is the marts' business.
"""

from __future__ import annotations

from datetime import date

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from mkt_platform.defs.polygon.contract import AGG_CONTRACT
from mkt_platform.defs.polygon.resources import PolygonClient, PolygonSettingError
from mkt_platform.lib import equity_calendar, lake, raw
from mkt_platform.lib.contracts import ContractViolation

SOURCE = "polygon"
#: The ticker of ``polygon_spy_aggs_1m``.
SPY = "SPY"
MINUTE_MS = 60_000

AGGS_COLUMNS = {
    "ticker": "Polygon ticker (SPY).",
    **{f.name: f.description for f in AGG_CONTRACT.fields},
}


def ny_dates(table: pa.Table) -> pa.Array:
    """The New York date (``YYYY-MM-DD``) of each bar of ``table``, vectorized."""
    in_new_york = table["bar_time"].cast(pa.timestamp("ms", tz="America/New_York"))
    return pc.strftime(in_new_york, format="%Y-%m-%d")


def pull_spy_aggs_1m(
    context: dg.AssetExecutionContext, polygon: PolygonClient
) -> dg.MaterializeResult:
    """Pull ``polygon_spy_aggs_1m`` for the run's trading days: one paged range of minute
    bars, split per New York date, checked, and each day written whole.

    Raises:
        dagster.Failure: no API key, an answer that broke its contract (quarantined; nothing
            written), or a blocking check failed (nothing written).
    """
    key = context.asset_key.to_user_string()
    days = context.partition_keys
    context.log.info(
        f"pulling {SPY} minute bars for {len(days)} trading day(s), {days[0]}..{days[-1]}"
    )
    try:
        bars = polygon.fetch_aggregates(SPY, 1, "minute", days[0], days[-1])
    except PolygonSettingError as exc:
        raise dg.Failure(f"{key} {days[0]}..{days[-1]}: {exc}") from exc
    except ContractViolation as exc:
        raise raw.contract_failure(exc, key, days) from exc
    dates = ny_dates(bars)
    tables = {day: bars.filter(pc.equal(dates, day)) for day in days}
    outcomes = {day: raw.equity_bar_quality(table) for day, table in tables.items()}
    raw.refuse_failing_partitions(key, f"{SOURCE}_spy_aggs_1m", "equity_bars", outcomes, tables)
    for day, table in tables.items():
        session = equity_calendar.session(date.fromisoformat(day))
        metadata = {
            "bars": table.num_rows,
            "extended_hours_bars": table.num_rows - _session_bars(table, session),
            "session_open": session.open.isoformat() if session else None,
            "session_close": session.close.isoformat() if session else None,
            "is_early_close": bool(session and session.is_early_close),
        }
        path = lake.raw_partition_path(SOURCE, "spy_aggs_1m", day)
        written = raw.write_partition(path, table, ["ticker", "bar_time"], "bar_time", AGGS_COLUMNS)
        context.add_asset_metadata({**metadata, **written}, partition_key=day)
    return dg.MaterializeResult(
        check_results=raw.check_results(context.asset_key, "equity_bars", outcomes)
    )


def _session_bars(table: pa.Table, session: equity_calendar.Session | None) -> int:
    if session is None or not table.num_rows:
        return 0
    times = pc.cast(table["bar_time"], pa.int64())
    opened, closed = int(session.open.timestamp() * 1000), int(session.close.timestamp() * 1000)
    return pc.sum(pc.and_(pc.greater_equal(times, opened), pc.less(times, closed))).as_py() or 0
