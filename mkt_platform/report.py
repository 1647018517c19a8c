"""``mkt-platform report --start DATE --end DATE``: a static HTML report of the marts.

One self-contained HTML file (the charts are inline PNGs, no script, no network): for the
UTC days ``START..END`` (inclusive), the charts of :mod:`mkt_platform.lib.charts` (session
candles, implied vs realized volatility with the premium, the smile and the term structure
at the last hour of the range with option trades) and under each chart the table of the mart
rows it was drawn from. A mart with no row in the range is named as empty, not drawn.

Reads the warehouse (:mod:`mkt_platform.warehouse`) read-only: with the default DuckDB file,
run it when no dbt build is writing (DuckDB lets no reader in beside a writer); a DuckLake
warehouse (``MKT_WAREHOUSE=ducklake``) can be read while dbt writes.
"""

from __future__ import annotations

import base64
import html
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from mkt_platform import settings, warehouse
from mkt_platform.lib.charts import CHARTS, Chart
from mkt_platform.lib.lake import atomic_file

#: Report sections: the mart, its heading, and the columns of its table (in this order).
SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "session_ohlc_daily",
        "Daily sessions (08:00 to 08:00 UTC by default)",
        ("source", "instrument", "session_start", "open", "high", "low", "close"),
    ),
    (
        "volatility_risk_premium_daily",
        "Implied vs realized volatility: the volatility risk premium",
        (
            "currency",
            "day",
            "implied_volatility",
            "realized_volatility_trailing_30d",
            "realized_volatility_forward_30d",
            "premium_trailing_30d",
            "premium_forward_30d",
            "atm_iv_30d",
        ),
    ),
    (
        "option_smile_hourly",
        "The smile per expiry (implied volatility, percent)",
        (
            "hour",
            "expiry",
            "days_to_expiry",
            "forward_price",
            "iv_25d_put",
            "atm_iv",
            "iv_25d_call",
            "risk_reversal_25d",
            "butterfly_25d",
        ),
    ),
    (
        "option_term_structure_hourly",
        "ATM term structure at fixed maturities (percent)",
        ("hour", "maturity_days", "atm_iv", "lower_expiry", "upper_expiry"),
    ),
)


def _cell(value: Any) -> str:
    if value is None:
        return "<td class=null>NULL</td>"
    if isinstance(value, float):
        return f"<td class=num>{value:.6g}</td>"
    if isinstance(value, (int, Decimal)):
        return f"<td class=num>{html.escape(str(value))}</td>"
    if isinstance(value, datetime):
        return f"<td>{value.astimezone(UTC):%Y-%m-%d %H:%M}</td>"
    return f"<td>{html.escape(str(value))}</td>"


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    shown = [c for c in columns if rows and c in rows[0]]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in shown)
    body = "".join("<tr>" + "".join(_cell(r[c]) for c in shown) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def build_charts(start: date, end: date) -> dict[str, Chart | None]:
    """The chart of each section's mart for the UTC days ``start..end`` (``None``: no rows).

    Raises:
        FileNotFoundError: there is no warehouse yet (nothing was materialized).
        duckdb.Error: the warehouse cannot be opened read-only (a dbt build holds it).
    """
    if not warehouse.exists():
        raise FileNotFoundError(f"no warehouse at {warehouse.describe()}: materialize first")
    window = (
        datetime(start.year, start.month, start.day, tzinfo=UTC),
        datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1),
    )
    charts: dict[str, Chart | None] = {}
    with warehouse.connect(read_only=True) as con:
        tables = {
            name
            for (name,) in con.execute(
                "select table_name from duckdb_tables() where schema_name = 'marts' "
                "and database_name = current_database() union all "
                "select view_name from duckdb_views() where schema_name = 'marts' "
                "and database_name = current_database()"
            ).fetchall()
        }
        for mart, _, _ in SECTIONS:
            charts[mart] = CHARTS[mart](con, *window) if mart in tables else None
    return charts


def write_report(start: date, end: date, path: Path) -> Path:
    """Write the report of the UTC days ``start..end`` to ``path`` (atomically, with the
    lake's :func:`~mkt_platform.lib.lake.atomic_file`). Returns ``path``.

    Raises:
        FileNotFoundError: there is no warehouse yet.
        duckdb.Error: the warehouse cannot be opened read-only.
    """
    charts = build_charts(start, end)
    parts = [
        "<!doctype html><html><head><meta charset=utf-8>",
        f"<title>mkt_platform report {start} to {end}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}"
        "table{border-collapse:collapse;font-size:12px;margin-bottom:2em}"
        "td,th{border:1px solid #ccc;padding:2px 6px}td.num{text-align:right}"
        "td.null{color:#999}img{max-width:100%}</style></head><body>",
        f"<h1>mkt_platform: {start} to {end} (UTC days)</h1>",
        f"<p>From the warehouse {html.escape(warehouse.describe())}, drawn "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Each chart is drawn from the rows in the "
        "table under it.</p>",
    ]
    for mart, heading, columns in SECTIONS:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        chart = charts[mart]
        if chart is None:
            parts.append(f"<p>No row of <code>marts.{mart}</code> in this range.</p>")
            continue
        encoded = base64.b64encode(chart.png(dpi=90)).decode("ascii")
        title = html.escape(chart.title)
        parts.append(f'<img alt="{title}" src="data:image/png;base64,{encoded}">')
        parts.append(f"<p><code>marts.{mart}</code>, {len(chart.rows)} rows:</p>")
        parts.append(_table(chart.rows, columns))
    parts.append("</body></html>")
    with atomic_file(path) as handle:
        handle.write("\n".join(parts).encode("utf-8"))
    return path


def default_path(start: date, end: date) -> Path:
    """``$MKT_DATA_DIR/reports/report_START_END.html``."""
    return settings.data_dir() / "reports" / f"report_{start}_{end}.html"
