"""Charts of the marts, drawn from the marts' own rows: what a person would rather look at
than read. Used for the Dagster materialization metadata of the charted marts (a PNG inside
markdown, which the Dagster UI renders) and for ``mkt-platform report``.

Every chart is built from rows a query of its mart returned, kept on the :class:`Chart` as
``rows``, and every plotted series carries a ``gid`` naming the column it draws, so a test
can compare what is drawn with a query of the mart. Drawn with matplotlib's object API on
the Agg canvas (no display, no pyplot state: safe in any thread).

Charted marts (:data:`CHARTS`): ``session_ohlc_daily`` (session candles, the high and low
marked), ``volatility_risk_premium_daily`` (DVOL against realized volatility, with the
premium), ``option_smile_hourly`` (the 25-delta put, ATM and 25-delta call iv per expiry)
and ``option_term_structure_hourly`` (fixed-maturity ATM iv and the expiries' own ATM iv).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb
    from matplotlib.figure import Figure

#: At most this many instruments are drawn in a session chart (small multiples).
MAX_PANELS = 8
#: The days of sessions a session chart shows, up to the end of its window.
SESSION_DAYS = 60
#: The days of context a premium chart shows up to the end of its window.
PREMIUM_DAYS = 120


@dataclass(frozen=True)
class Chart:
    """A drawn chart and the mart rows it was drawn from."""

    mart: str
    title: str
    figure: Figure
    rows: list[dict[str, Any]]

    def png(self, dpi: int = 80) -> bytes:
        """The chart as PNG bytes."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(self.figure)
        buffer = io.BytesIO()
        # The constrained layout (:func:`_figure`) already fits the titles, labels and the
        # legends outside the axes into the figure: ``bbox_inches="tight"`` would draw the
        # whole figure a second time to measure it.
        self.figure.savefig(buffer, format="png", dpi=dpi)
        return buffer.getvalue()

    def markdown(self, dpi: int = 80) -> str:
        """The chart as markdown with an inline PNG (what Dagster's UI renders)."""
        encoded = base64.b64encode(self.png(dpi)).decode("ascii")
        return f"**{self.title}**\n\n![{self.title}](data:image/png;base64,{encoded})"

    def series(self, gid: str) -> list[tuple[float, float]]:
        """The (x, y) points of the plotted series with this ``gid`` (x as matplotlib's
        numbers: dates are days since the epoch), NaN gaps left out."""
        import math

        points: list[tuple[float, float]] = []
        for axes in self.figure.axes:
            for line in axes.get_lines():
                if line.get_gid() == gid:
                    points.extend(
                        (float(x), float(y))
                        for x, y in line.get_xydata()
                        if not (math.isnan(x) or math.isnan(y))
                    )
        return points

    def bars(self, gid: str) -> list[tuple[float, float, float]]:
        """The (x centre, bottom, top) of the bars (rectangles) with this ``gid``; a NaN
        height (a NULL) is left out."""
        import math

        out = []
        for axes in self.figure.axes:
            for patch in axes.patches:
                if patch.get_gid() == gid and not math.isnan(patch.get_height()):
                    x = patch.get_x() + patch.get_width() / 2
                    y0, y1 = sorted((patch.get_y(), patch.get_y() + patch.get_height()))
                    out.append((x, y0, y1))
        return out

    def segments(self, gid: str) -> list[tuple[float, float, float]]:
        """The (x, y low, y high) of the vertical segments (a line collection) with this
        ``gid``."""
        out = []
        for axes in self.figure.axes:
            for collection in axes.collections:
                if collection.get_gid() == gid:
                    for segment in collection.get_segments():
                        (x0, y0), (_, y1) = segment
                        out.append((float(x0), float(min(y0, y1)), float(max(y0, y1))))
        return out


def _figure(width: float = 8.0, height: float = 3.6, panels: int = 1) -> Figure:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height * panels), layout="constrained")
    figure.subplots(panels, 1, squeeze=False, sharex=False)
    return figure


def _date_axis(axes: Any) -> None:
    """Dates on the x axis, at most about 8 ticks, labelled concisely."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator(minticks=3, maxticks=8)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]) -> list[dict]:
    cursor = con.execute(sql, list(params))
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


# -- the charts ----------------------------------------------------------------------------


def session_candles(rows: list[dict[str, Any]]) -> Chart:
    """Daily session candles, one panel per (source, instrument): a bar from open to close
    (green up, red down), a wick from low to high, and the window's highest high and lowest
    low marked. ``rows``: ``session_ohlc_daily`` rows (source, instrument, session_start,
    open, high, low, close; prices in quote currency)."""
    from matplotlib.dates import date2num

    instruments = sorted({(r["source"], r["instrument"]) for r in rows})[:MAX_PANELS]
    figure = _figure(panels=max(1, len(instruments)), height=2.6)
    for axes, (source, instrument) in zip(figure.axes, instruments, strict=False):
        own = sorted(
            (r for r in rows if (r["source"], r["instrument"]) == (source, instrument)),
            key=lambda r: r["session_start"],
        )
        x = [date2num(r["session_start"]) for r in own]
        opens, closes = [float(r["open"]) for r in own], [float(r["close"]) for r in own]
        highs, lows = [float(r["high"]) for r in own], [float(r["low"]) for r in own]
        colors = ["tab:green" if c >= o else "tab:red" for o, c in zip(opens, closes, strict=True)]
        wicks = axes.vlines(x, lows, highs, colors=colors, linewidth=0.8)
        wicks.set_gid(f"{instrument}:wick")
        bodies = axes.bar(
            x,
            [abs(c - o) for o, c in zip(opens, closes, strict=True)],
            bottom=[min(o, c) for o, c in zip(opens, closes, strict=True)],
            width=0.6,
            color=colors,
        )
        for body in bodies:
            body.set_gid(f"{instrument}:body")
        top = max(range(len(own)), key=lambda i: highs[i])
        bottom = min(range(len(own)), key=lambda i: lows[i])
        axes.plot([x[top]], [highs[top]], "v", color="black", gid=f"{instrument}:max_high")
        axes.plot([x[bottom]], [lows[bottom]], "^", color="black", gid=f"{instrument}:min_low")
        # labels beside the markers, not under them
        beside = {"textcoords": "offset points", "fontsize": 7}
        axes.annotate(
            f"high {highs[top]:,.2f}", (x[top], highs[top]), (6, 2), va="bottom", **beside
        )
        axes.annotate(
            f"low {lows[bottom]:,.2f}", (x[bottom], lows[bottom]), (6, -2), va="top", **beside
        )
        axes.margins(y=0.12)
        axes.set_title(f"{source} {instrument}: daily sessions", fontsize=9)
        _date_axis(axes)
        axes.tick_params(labelsize=7)
        axes.grid(alpha=0.3)
    return Chart("session_ohlc_daily", "Daily session candles", figure, rows)


def volatility_premium(rows: list[dict[str, Any]]) -> Chart:
    """Implied (DVOL close) against trailing and forward 30-session realized volatility,
    and the premium (implied - trailing realized) as bars, in percent, one panel per
    currency. ``rows``: ``volatility_risk_premium_daily`` rows."""
    from matplotlib.dates import date2num

    currencies = sorted({r["currency"] for r in rows})
    figure = _figure(panels=max(1, len(currencies)), height=3.0)
    for axes, currency in zip(figure.axes, currencies, strict=False):
        by_day = {r["day"]: r for r in rows if r["currency"] == currency}
        # every day from the first to the last, a missing one NULL: lines break at gaps
        first, last = min(by_day), max(by_day)
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        own = [by_day.get(day, {"day": day}) for day in days]
        x = [date2num(r["day"]) for r in own]
        for column, label, style in (
            ("implied_volatility", "implied (DVOL)", "-"),
            ("realized_volatility_trailing_30d", "realized, trailing 30", "-"),
            ("realized_volatility_forward_30d", "realized, next 30", ":"),
            ("atm_iv_30d", "30-day ATM iv (trades)", "."),
        ):
            values = [_float(r.get(column)) * 100 for r in own]
            if all(v != v for v in values):  # nothing to draw (all NULL)
                continue
            axes.plot(x, values, style, label=label, gid=f"{currency}:{column}")
        premium = [_float(r.get("premium_trailing_30d")) * 100 for r in own]
        bars = axes.bar(
            x, premium, width=0.8, alpha=0.3, color="tab:purple", label="premium (trailing)"
        )
        for bar in bars:
            bar.set_gid(f"{currency}:premium_trailing_30d")
        axes.axhline(0, color="black", linewidth=0.5)
        axes.set_title(f"{currency}: implied vs realized volatility (%)", fontsize=9)
        _date_axis(axes)
        axes.tick_params(labelsize=7)
        axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        axes.grid(alpha=0.3)
    return Chart("volatility_risk_premium_daily", "Implied vs realized volatility", figure, rows)


#: The smile's x positions: the 25-delta put, the money, the 25-delta call.
SMILE_POINTS = (("iv_25d_put", -1.0), ("atm_iv", 0.0), ("iv_25d_call", 1.0))


def smile(rows: list[dict[str, Any]]) -> Chart:
    """The smile of each expiry at one hour: iv (percent) of the 25-delta put, at the money
    and of the 25-delta call, a line per expiry (missing points left out). ``rows``:
    ``option_smile_hourly`` rows of one hour."""
    figure = _figure()
    axes = figure.axes[0]
    hour = rows[0]["hour"] if rows else None
    for row in sorted(rows, key=lambda r: r["expiry"]):
        points = [(x, float(row[c])) for c, x in SMILE_POINTS if row[c] is not None]
        if not points:
            continue
        label = f"{row['expiry']:%d%b%y} ({row['days_to_expiry']:.1f} d)".upper()
        axes.plot(*zip(*points, strict=True), "o-", label=label, gid=f"{row['expiry']:%Y-%m-%d}")
    axes.set_xticks([x for _, x in SMILE_POINTS], ["25d put", "ATM", "25d call"])
    axes.set_ylabel("implied volatility (%)")
    axes.set_title(f"Smile per expiry, {hour:%Y-%m-%d %H:00} UTC" if hour else "Smile", fontsize=9)
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), title="expiry")
    axes.grid(alpha=0.3)
    return Chart("option_smile_hourly", "Smile per expiry", figure, rows)


def term_structure(rows: list[dict[str, Any]], expiries: list[dict[str, Any]]) -> Chart:
    """ATM implied volatility against maturity at one hour: the fixed maturities (7, 30, 60,
    90 days) as a line, and each expiry's own ATM iv as points. ``rows``:
    ``option_term_structure_hourly`` rows of one hour; ``expiries``: ``option_smile_hourly``
    rows of that hour."""
    figure = _figure()
    axes = figure.axes[0]
    fixed = [(r["maturity_days"], float(r["atm_iv"])) for r in rows if r["atm_iv"] is not None]
    fixed.sort()
    if fixed:
        axes.plot(*zip(*fixed, strict=True), "s-", label="fixed maturity", gid="atm_iv")
    own = sorted(
        (float(e["days_to_expiry"]), float(e["atm_iv"]))
        for e in expiries
        if e["atm_iv"] is not None
    )
    if own:
        axes.plot(*zip(*own, strict=True), "o", alpha=0.6, label="expiries", gid="expiry_atm_iv")
    hour = rows[0]["hour"] if rows else None
    axes.set_xlabel("days to expiry")
    axes.set_ylabel("ATM implied volatility (%)")
    axes.set_title(
        f"Term structure, {hour:%Y-%m-%d %H:00} UTC" if hour else "Term structure", fontsize=9
    )
    axes.legend(fontsize=7)
    axes.grid(alpha=0.3)
    return Chart("option_term_structure_hourly", "ATM term structure", figure, rows)


# -- the charts of a window, from the warehouse ---------------------------------------------


def session_chart(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> Chart | None:
    """The candles of the sessions starting in the :data:`SESSION_DAYS` days before ``end``
    (a one-day run still shows its session among the ones before it; a long backfill its
    last two months)."""
    start = end - timedelta(days=SESSION_DAYS)
    rows = _rows(
        con,
        "select source, instrument, session_start, open, high, low, close "
        "from marts.session_ohlc_daily where session_start >= $1 and session_start < $2 "
        "order by source, instrument, session_start",
        (start, end),
    )
    return session_candles(rows) if rows else None


def premium_chart(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> Chart | None:
    """The premium of the :data:`PREMIUM_DAYS` days before ``end`` (a one-day run still
    shows the months before it; a long range its last four months)."""
    first = end - timedelta(days=PREMIUM_DAYS)
    rows = _rows(
        con,
        "select * from marts.volatility_risk_premium_daily "
        "where day >= $1::date and day < $2::date order by currency, day",
        (first, end),
    )
    return volatility_premium(rows) if rows else None


def _last_hour(con: duckdb.DuckDBPyConnection, mart: str, start: datetime, end: datetime):
    (hour,) = con.execute(
        f"select max(hour) from marts.{mart} where hour >= $1 and hour < $2", [start, end]
    ).fetchone()
    return hour


def smile_chart(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> Chart | None:
    """The smile at the last hour of ``[start, end)`` that has one."""
    hour = _last_hour(con, "option_smile_hourly", start, end)
    if hour is None:
        return None
    rows = _rows(con, "select * from marts.option_smile_hourly where hour = $1", (hour,))
    return smile(rows)


def term_chart(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> Chart | None:
    """The term structure at the last hour of ``[start, end)`` that has one."""
    hour = _last_hour(con, "option_term_structure_hourly", start, end)
    if hour is None:
        return None
    rows = _rows(
        con,
        "select * from marts.option_term_structure_hourly where hour = $1 order by maturity_days",
        (hour,),
    )
    expiries = _rows(con, "select * from marts.option_smile_hourly where hour = $1", (hour,))
    return term_structure(rows, expiries)


#: The charted marts: mart name -> the chart of a window, from a read-only connection.
CHARTS: dict[str, Callable[[Any, datetime, datetime], Chart | None]] = {
    "session_ohlc_daily": session_chart,
    "volatility_risk_premium_daily": premium_chart,
    "option_smile_hourly": smile_chart,
    "option_term_structure_hourly": term_chart,
}
