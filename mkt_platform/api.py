"""The read API: the marts over HTTP for charting tools, bots and notebooks
(``mkt-platform api [--host H] [--port P]``, FastAPI served by uvicorn).

One GET endpoint per dataset (:data:`DATASETS`): the daily, weekly and monthly sessions, the
hourly candles, the options' hourly OHLC, greeks per trade, expiry aggregates, flow, ATM iv,
smile and term structure, the funding marts, DVOL and the volatility marts. Each takes

* ``start`` and ``end`` (UTC; a date ``2025-06-01`` or a date-time
  ``2025-06-01T08:00:00Z``): the rows whose time column (``session_start``, ``open_time``,
  ``hour``, a day ...) lies from ``start`` to ``end``, both included; a date ``end`` includes
  its whole day;
* the dataset's filters (``source``, ``instrument``, ``currency``, ``expiry`` as a date,
  ``option_type``), each repeatable (``instrument=BTCUSDT&instrument=ETHUSDT``); a value the
  mart does not hold is answered 404, naming it and the values that exist;
* ``limit`` (1..10,000 rows, default 1,000) and ``cursor`` (from the previous page): keyset
  paging in the dataset's key order (time first), so that a page read while dbt commits
  never repeats a row of an earlier page;
* ``format``: ``json`` (default), ``csv`` or ``parquet``.

JSON answers ``{"dataset", "relation", "count", "next", "rows"}``, each row an object of
column to value: decimals as exact JSON numbers (written by DuckDB, never through a float),
timestamps as ISO 8601 UTC strings with milliseconds (``2025-06-01T08:00:00.000Z``), dates
as ``YYYY-MM-DD``, a non-finite double as ``null``. CSV has the same values under a header
line; Parquet keeps the warehouse's types (``decimal128(38, 8)``, ``timestamp[us, UTC]``).
``next`` (and, in every format, the ``Link: <...>; rel="next"`` header) is the URL of the
next page, absent on the last.

Errors are 4xx with a message naming the parameter (422: a malformed value, ``start`` after
``end``, a cursor of another dataset; 404: an unknown filter value, a mart not built yet;
401: a missing or wrong bearer token), 503 while there is no warehouse yet or the DuckDB
file is being written (``Retry-After``). With ``MKT_API_TOKEN`` set, every data request must
send ``Authorization: Bearer <token>``; ``/health`` and the OpenAPI schema (``/openapi.json``,
``/docs``) stay open.

The warehouse is read through :mod:`mkt_platform.warehouse`. On DuckLake the API holds one
read-only attachment and gives each request its own cursor: it never blocks dbt, and each
request sees the latest committed snapshot. On the DuckDB file it opens the file read-only
for each request and closes it at once: a request waits for, and makes wait, a dbt write.
"""

from __future__ import annotations

import base64
import binascii
import inspect
import io
import json
import logging
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import yaml
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from mkt_platform import settings, warehouse

log = logging.getLogger("mkt_platform.api")

#: The most rows one page holds.
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1_000


@dataclass(frozen=True)
class Filter:
    """A query parameter that selects rows whose ``column`` is one of its values."""

    name: str
    column: str
    description: str
    #: ``text``: the column's value; ``date``: the UTC date of a timestamp column.
    kind: str = "text"


SOURCE = Filter("source", "source", "Venue: `binance` or `hyperliquid`.")
INSTRUMENT = Filter(
    "instrument", "instrument", "The venue's symbol (e.g. `BTCUSDT`, Hyperliquid's `BTC`)."
)
CURRENCY = Filter("currency", "currency", "Deribit's currency of the index (`BTC`, `ETH`).")
EXPIRY = Filter("expiry", "expiry", "The option expiry's UTC date (Deribit: 08:00 UTC).", "date")
OPTION_TYPE = Filter("option_type", "option_type", "`C` (call) or `P` (put).")
OPTION_INSTRUMENT = Filter(
    "instrument", "instrument", "Deribit's option instrument (e.g. `BTC-27SEP24-70000-C`)."
)


@dataclass(frozen=True)
class Dataset:
    """One endpoint: a warehouse relation, its time column and key (the paging order)."""

    name: str
    relation: str
    time_column: str
    key: tuple[str, ...]
    filters: tuple[Filter, ...]
    summary: str

    @property
    def path(self) -> str:
        return "/" + self.name

    @property
    def model(self) -> str:
        return self.relation.split(".")[-1]


SESSION_FILTERS = (SOURCE, INSTRUMENT)
SESSION_KEY = ("session_start", "source", "instrument")
#: Every dataset the API serves, in the order of the OpenAPI schema.
DATASETS: tuple[Dataset, ...] = (
    Dataset(
        "sessions/daily",
        "marts.session_ohlc_daily",
        "session_start",
        SESSION_KEY,
        SESSION_FILTERS,
        "Daily sessions (08:00 to 08:00 UTC): OHLCV and the session's extremes",
    ),
    Dataset(
        "sessions/weekly",
        "marts.session_ohlc_weekly",
        "session_start",
        SESSION_KEY,
        SESSION_FILTERS,
        "Weekly sessions (Friday to Friday, 08:00 UTC)",
    ),
    Dataset(
        "sessions/monthly",
        "marts.session_ohlc_monthly",
        "session_start",
        SESSION_KEY,
        SESSION_FILTERS,
        "Monthly sessions (last Friday to last Friday, 08:00 UTC)",
    ),
    Dataset(
        "candles/1h",
        "intermediate.int_candles_1h",
        "open_time",
        ("open_time", "source", "instrument"),
        SESSION_FILTERS,
        "Hourly candles of every venue, deduplicated (the sessions are built from them)",
    ),
    Dataset(
        "options/ohlc",
        "marts.option_ohlc_hourly",
        "hour",
        ("hour", "instrument"),
        (OPTION_INSTRUMENT, EXPIRY, OPTION_TYPE),
        "Deribit options: OHLC per instrument and hour, in BTC and USD, with iv and mark",
    ),
    Dataset(
        "options/greeks",
        "marts.option_greeks",
        "timestamp",
        ("timestamp", "trade_id"),
        (Filter("instrument", "instrument_name", OPTION_INSTRUMENT.description), EXPIRY),
        "Deribit option trades with the forward and their Black-76 greeks",
    ),
    Dataset(
        "options/expiries",
        "marts.option_expiry_hourly",
        "hour",
        ("hour", "expiry"),
        (EXPIRY,),
        "Deribit options per expiry and hour: volume, put/call ratio, premium, iv",
    ),
    Dataset(
        "options/flow",
        "marts.option_flow_hourly",
        "hour",
        ("hour", "expiry"),
        (EXPIRY,),
        "Deribit options flow per expiry and hour: taker side, blocks, net delta",
    ),
    Dataset(
        "options/atm-iv",
        "marts.option_atm_iv_hourly",
        "hour",
        ("hour", "expiry"),
        (EXPIRY,),
        "Deribit at-the-money implied volatility per expiry and hour",
    ),
    Dataset(
        "options/smile",
        "marts.option_smile_hourly",
        "hour",
        ("hour", "expiry"),
        (EXPIRY,),
        "Deribit smile per expiry and hour: ATM and 25-delta iv, risk reversal, butterfly",
    ),
    Dataset(
        "options/term-structure",
        "marts.option_term_structure_hourly",
        "hour",
        ("hour", "maturity_days"),
        (),
        "Deribit ATM implied volatility at 7, 30, 60 and 90 days, per hour",
    ),
    Dataset(
        "funding/daily",
        "marts.funding_rates_daily",
        "funding_date",
        ("funding_date", "source", "instrument"),
        SESSION_FILTERS,
        "Perpetual funding per instrument and UTC day: events, sum, APR",
    ),
    Dataset(
        "funding/carry",
        "marts.funding_carry_daily",
        "funding_date",
        ("funding_date", "source", "instrument"),
        SESSION_FILTERS,
        "Perpetual funding carry, annualized, per day and over 7 and 30 days",
    ),
    Dataset(
        "volatility/dvol",
        "marts.dvol_daily",
        "day",
        ("day", "currency"),
        (CURRENCY,),
        "Deribit's DVOL implied volatility index, daily OHLC",
    ),
    Dataset(
        "volatility/realized",
        "marts.realized_volatility_rolling",
        "session_start",
        SESSION_KEY,
        SESSION_FILTERS,
        "Realized volatility over 7, 30 and 90 sessions, five estimators",
    ),
    Dataset(
        "volatility/premium",
        "marts.volatility_risk_premium_daily",
        "day",
        ("day", "currency"),
        (CURRENCY,),
        "Implied (DVOL, options ATM) against realized volatility, and the premiums",
    ),
)


#: The ``Authorization: Bearer`` header, read by the token check of :func:`create_app`.
BEARER = HTTPBearer(auto_error=False, description="MKT_API_TOKEN, when it is set.")


class Format(StrEnum):
    json = "json"
    csv = "csv"
    parquet = "parquet"


MEDIA_TYPES = {
    Format.json: "application/json",
    Format.csv: "text/csv; charset=utf-8",
    Format.parquet: "application/vnd.apache.parquet",
}


class Page(BaseModel):
    """One page of a dataset's rows (``format=json``)."""

    dataset: str = Field(description="The endpoint's dataset, e.g. `sessions/daily`.")
    relation: str = Field(
        description="The warehouse relation read, e.g. `marts.session_ohlc_daily`."
    )
    count: int = Field(ge=0, description="Rows in this page.")
    next: str | None = Field(description="URL of the next page; null on the last.")
    rows: list[dict[str, Any]] = Field(description="Column to value, in the key's order.")


class DatasetInfo(BaseModel):
    name: str
    path: str
    relation: str
    description: str
    time_column: str
    key: list[str]
    filters: list[str]
    built: bool
    columns: dict[str, str] = Field(description="Column name to its dbt description.")


class Health(BaseModel):
    status: str
    warehouse: str
    warehouse_built: bool


def _model_docs() -> dict[str, dict[str, Any]]:
    """Each dbt model's description and its columns' (from the dbt project's YAML)."""
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted(Path(settings.DBT_PROJECT_DIR, "models").rglob("*.yml")):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models") or []:
            docs[model["name"]] = {
                "description": " ".join(str(model.get("description", "")).split()),
                "columns": {
                    column["name"]: " ".join(str(column.get("description", "")).split())
                    for column in model.get("columns") or []
                },
            }
    return docs


class Unavailable(Exception):
    """The warehouse cannot be read now (none yet, or the DuckDB file is being written)."""


class WarehouseReader:
    """Connections for requests: on DuckLake a cursor of one shared read-only attachment
    (reattached after an error), on the DuckDB file a read-only open per request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._attached: duckdb.DuckDBPyConnection | None = None

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        try:
            if warehouse.kind() == "ducklake":
                with self._lock:
                    if self._attached is None:
                        self._attached = warehouse.connect(read_only=True)
                    con = self._attached.cursor()
                # a cursor does not inherit the connection's variables (a view over the lake
                # would read the lake's root from it)
                warehouse.set_lake_variable(con)
            else:
                con = warehouse.connect(read_only=True)
        except FileNotFoundError as exc:
            raise Unavailable(str(exc)) from exc
        except duckdb.Error as exc:
            self.reset()
            raise Unavailable(f"cannot open the warehouse ({warehouse.describe()}): {exc}") from exc
        try:
            con.execute("SET TimeZone = 'UTC'")
            yield con
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            self.reset()
            raise Unavailable(f"the warehouse ({warehouse.describe()}) failed: {exc}") from exc
        finally:
            con.close()

    def reset(self) -> None:
        with self._lock:
            if self._attached is not None:
                self._attached.close()
                self._attached = None


def _columns(con: duckdb.DuckDBPyConnection, dataset: Dataset) -> list[tuple[str, str]] | None:
    """The relation's (column, DuckDB type) in order, or ``None`` if it is not built."""
    schema, _, name = dataset.relation.partition(".")
    rows = con.execute(
        "select column_name, data_type from duckdb_columns() where database_name = ? "
        "and schema_name = ? and table_name = ? order by column_index",
        [warehouse.DATABASE, schema, name],
    ).fetchall()
    return rows or None


def _rendered(column: str, data_type: str) -> str:
    """The select expression of a column for JSON and CSV (see the module docstring)."""
    quoted = f'"{column}"'
    if data_type.startswith("TIMESTAMP"):
        return f"strftime({quoted}, '%Y-%m-%dT%H:%M:%S.%gZ') as {quoted}"
    if data_type in ("DOUBLE", "FLOAT", "REAL"):
        return f"case when isfinite({quoted}) then {quoted} end as {quoted}"
    return quoted


def _utc(value: date | datetime) -> datetime:
    """A date (its midnight) or date-time (naive: UTC) as an aware UTC date-time.

    Raises:
        OverflowError: outside the years 1..9999 once in UTC.
    """
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.combine(value, time(), UTC)


#: ``start`` and ``end``: an ISO 8601 date, or a date-time to the second or finer with an
#: optional offset (``Z``, ``+02:00``). A bare number is not a time here (pydantic's lax
#: parsing would read ``0.5`` as a Unix time).
TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?$"


def _parse_time(name: str, text: str | None) -> date | datetime | None:
    """``start`` or ``end`` as a date (date only) or a date-time.

    Raises:
        HTTPException: 422, a text of the pattern that is no calendar time (``2025-02-30``).
    """
    if text is None:
        return None
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError as exc:
        raise HTTPException(422, f"{name}: {text!r} is not a date or date-time ({exc})") from None


def _encode_cursor(dataset: Dataset, row: dict[str, Any]) -> str:
    """The opaque cursor of the rows after ``row``: its key, base64 of JSON."""
    values = [row[k] for k in dataset.key]
    values = [v.isoformat() if isinstance(v, date | datetime) else v for v in values]
    raw = json.dumps({"dataset": dataset.name, "after": values}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(dataset: Dataset, cursor: str) -> list[Any]:
    bad = HTTPException(
        422, f"cursor: not a cursor of {dataset.path}; use the `next` URL of its previous page"
    )
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise bad from None
    if (
        not isinstance(raw, dict)
        or raw.get("dataset") != dataset.name
        or not isinstance(raw.get("after"), list)
        or len(raw["after"]) != len(dataset.key)
        or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in raw["after"])
    ):
        raise bad
    return raw["after"]


def _unknown_values(
    con: duckdb.DuckDBPyConnection, dataset: Dataset, flt: Filter, values: list[Any]
) -> None:
    """Raise 404 naming the values of ``flt`` that the relation does not hold."""
    column = f'"{flt.column}"' if flt.kind == "text" else f'cast("{flt.column}" as date)'
    (missing, known, total) = con.execute(
        f"""
        with present as (
            select distinct {column} as v from {warehouse.DATABASE}.{dataset.relation}
            where {column} is not null  -- a NULL would make every `not in` unknown
        )
        select (select list(w order by w) from unnest(?) as t(w)
                where w not in (select v from present)),
               (select list(v order by v) from (select v from present order by v limit 20)),
               (select count(*) from present)
        """,
        [values],
    ).fetchone()
    if missing:
        shown = ", ".join(str(v) for v in known or [])
        more = f" and {total - len(known)} more" if known and total > len(known) else ""
        raise HTTPException(
            404,
            f"{flt.name}: {', '.join(map(str, missing))} not in {dataset.relation} "
            f"(it holds {shown or 'no rows'}{more})",
        )


def _window(
    start: date | datetime | None, end: date | datetime | None
) -> tuple[datetime | None, datetime | None, bool]:
    """The UTC bounds of ``start``..``end``: (lower, upper, whether upper is included). A
    date ``end`` includes its whole day (the bound is the next midnight, excluded).

    Raises:
        HTTPException: 422 when a bound is outside the years 1-9999 or ``start`` is after
            ``end``.
    """
    try:
        lower = _utc(start) if start is not None else None
        upper: datetime | None = None
        upper_inclusive = True
        if isinstance(end, datetime):
            upper = _utc(end)
        elif end is not None and end < date.max:
            upper, upper_inclusive = _utc(end + timedelta(days=1)), False
    except OverflowError:
        raise HTTPException(422, "start, end: outside the years 1 to 9999 in UTC") from None
    if (
        lower is not None
        and upper is not None
        and (lower > upper if upper_inclusive else lower >= upper)
    ):
        raise HTTPException(422, f"start ({start}) is after end ({end})")
    return lower, upper, upper_inclusive


def _select(
    dataset: Dataset,
    columns: list[tuple[str, str]],
    window: tuple[datetime | None, datetime | None, bool],
    filters: dict[Filter, list[Any]],
    after: list[Any] | None,
    limit: int,
    fmt: Format,
) -> tuple[str, list[Any]]:
    """The page's SQL and its parameters: the window, the filters and the cursor's key as
    ``where`` terms, ordered by the key, ``limit + 1`` rows (the extra one says a next page
    exists). Parquet keeps the columns' types; JSON and CSV get them rendered as text."""
    types = dict(columns)
    key_columns = ", ".join(f'"{k}"' for k in dataset.key)
    lower, upper, upper_inclusive = window
    where: list[str] = []
    params: list[Any] = []
    time_column = f'"{dataset.time_column}"'
    if lower is not None:
        where.append(f"{time_column} >= ?")
        params.append(lower)
    if upper is not None:
        where.append(f"{time_column} {'<=' if upper_inclusive else '<'} ?")
        params.append(upper)
    for flt, values in filters.items():
        column = f'"{flt.column}"' if flt.kind == "text" else f'cast("{flt.column}" as date)'
        where.append(f"list_contains(?, {column})")
        params.append(values)
    if after is not None:
        casts = ", ".join(f"cast(? as {types[k]})" for k in dataset.key)
        where.append(f"({key_columns}) > ({casts})")
        params.extend(after)
    select = (
        ", ".join(f'"{c}"' for c, _ in columns)
        if fmt is Format.parquet
        else ", ".join(_rendered(c, t) for c, t in columns)
    )
    sql = (
        f"select {select} from {warehouse.DATABASE}.{dataset.relation}"
        + (f" where {' and '.join(where)}" if where else "")
        + f" order by {key_columns}"
        + f" limit {limit + 1}"
    )
    return sql, params


def _rendered_page(
    dataset: Dataset, request: Request, result: list[str] | pa.Table, limit: int, fmt: Format
) -> Response:
    """The response of one page: ``result`` holds up to ``limit + 1`` rows (DuckDB's JSON
    texts, or an Arrow table for CSV and Parquet); the extra row only makes the ``next`` link
    (and the ``Link`` header), keyed on the page's last row."""
    if isinstance(result, list):
        more = len(result) > limit
        rows = result[:limit]
        last = json.loads(rows[-1]) if more else None
    else:
        more = result.num_rows > limit
        table = result.slice(0, limit)
        last = table.slice(limit - 1, 1).to_pylist()[0] if more else None
    next_url = (
        str(request.url.include_query_params(cursor=_encode_cursor(dataset, last)))
        if last is not None
        else None
    )
    headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else {}
    if fmt is Format.json:
        # The rows are DuckDB's own JSON (exact decimals), spliced in as they are.
        head = json.dumps(
            {"dataset": dataset.name, "relation": dataset.relation, "count": len(rows)},
            separators=(",", ":"),
        )[:-1]
        body = f'{head},"next":{json.dumps(next_url)},"rows":[{",".join(rows)}]}}'
        return Response(body, media_type=MEDIA_TYPES[fmt], headers=headers)
    sink = io.BytesIO()
    if fmt is Format.csv:
        pa_csv.write_csv(table, sink)
    else:
        pq.write_table(table, sink)
    filename = dataset.name.replace("/", "_") + "." + fmt.value
    headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return Response(sink.getvalue(), media_type=MEDIA_TYPES[fmt], headers=headers)


def _page(
    reader: WarehouseReader,
    dataset: Dataset,
    request: Request,
    start: date | datetime | None,
    end: date | datetime | None,
    filters: dict[Filter, list[Any]],
    limit: int,
    cursor: str | None,
    fmt: Format,
) -> Response:
    """One page of ``dataset``: validated, queried on a reader connection, rendered.

    Raises:
        HTTPException: 404 for a mart not built or an unknown filter value; 422 for a bad
            window or cursor.
    """
    window = _window(start, end)
    after = _decode_cursor(dataset, cursor) if cursor else None
    with reader.connection() as con:
        columns = _columns(con, dataset)
        if columns is None:
            raise HTTPException(
                404,
                f"{dataset.relation} has not been built in the warehouse "
                f"({warehouse.kind()}) yet: `mkt-platform materialize` builds it",
            )
        for flt, values in filters.items():
            _unknown_values(con, dataset, flt, values)
        sql, params = _select(dataset, columns, window, filters, after, limit, fmt)
        try:
            result: list[str] | pa.Table
            if fmt is Format.json:
                result = [
                    text
                    for (text,) in con.execute(
                        f"select to_json(t)::varchar from ({sql}) t", params
                    ).fetchall()
                ]
            else:
                result = con.execute(sql, params).to_arrow_table()
        except (duckdb.ConversionException, duckdb.InvalidInputException) as exc:
            if after is None:
                raise
            raise HTTPException(422, f"cursor: its values do not fit {dataset.path}'s key") from exc
    return _rendered_page(dataset, request, result, limit, fmt)


def _query_parameter(name: str, annotation: Any, default: Any = None) -> inspect.Parameter:
    """A keyword-only query parameter of an endpoint's signature (what FastAPI reads)."""
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


def _endpoint(dataset: Dataset, reader: WarehouseReader):
    """The endpoint function of one dataset, its filters as named query parameters."""

    def handler(request: Request, **params: Any) -> Response:
        filters = {flt: params[flt.name] for flt in dataset.filters if params.get(flt.name)}
        return _page(
            reader,
            dataset,
            request,
            _parse_time("start", params["start"]),
            _parse_time("end", params["end"]),
            filters,
            params["limit"],
            params["cursor"],
            params["format"],
        )

    def time_parameter(name: str, description: str, examples: list[str]) -> inspect.Parameter:
        query = Query(pattern=TIME_PATTERN, description=description, examples=examples)
        return _query_parameter(name, Annotated[str | None, query])

    parameters = [
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
        time_parameter(
            "start",
            f"First `{dataset.time_column}` (UTC), included: a date or an ISO 8601 date-time "
            "(naive is UTC).",
            ["2025-06-01", "2025-06-01T08:00:00Z"],
        ),
        time_parameter(
            "end",
            f"Last `{dataset.time_column}` (UTC), included: a date includes its whole day.",
            ["2025-06-30"],
        ),
    ]
    for flt in dataset.filters:
        value_type = date if flt.kind == "date" else Annotated[str, Field(max_length=200)]
        query = Query(description=flt.description + " Repeat for several.", max_length=100)
        parameters.append(
            _query_parameter(flt.name, Annotated[list[value_type] | None, query])  # type: ignore[valid-type]
        )
    parameters += [
        _query_parameter(
            "limit",
            Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows per page.")],
            DEFAULT_LIMIT,
        ),
        _query_parameter(
            "cursor",
            Annotated[
                str | None,
                Query(max_length=2000, description="The previous page's cursor (in `next`)."),
            ],
        ),
        _query_parameter(
            "format",
            Annotated[Format, Query(description="json, csv or parquet.")],
            Format.json,
        ),
    ]
    handler.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    handler.__name__ = "get_" + dataset.name.replace("/", "_").replace("-", "_")
    return handler


def create_app(token: str | None = None) -> FastAPI:
    """The API over the configured warehouse; ``token`` (default: ``MKT_API_TOKEN``) is the
    bearer token every data request must send, ``None`` for none.

    Raises:
        mkt_platform.settings.SettingError: ``MKT_API_TOKEN`` is set but too short.
    """
    token = settings.api_token() if token is None else token
    docs = _model_docs()
    reader = WarehouseReader()

    def auth(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> None:
        if credentials is None or not secrets.compare_digest(
            credentials.credentials.encode(), token.encode()
        ):
            raise HTTPException(
                401,
                "a bearer token is required: Authorization: Bearer <MKT_API_TOKEN>",
                headers={"WWW-Authenticate": "Bearer"},
            )

    # Without a token the schema declares no security scheme: it says what the API does.
    guarded = [Depends(auth)] if token is not None else []

    app = FastAPI(
        title="mkt_platform read API",
        version="1",
        description=__doc__.split("\n\n", 1)[1],
    )

    @app.exception_handler(Unavailable)
    def unavailable(request: Request, exc: Unavailable) -> Response:
        return Response(
            json.dumps({"detail": str(exc)}),
            status_code=503,
            media_type="application/json",
            headers={"Retry-After": "5"},
        )

    @app.get("/health", response_model=Health, tags=["meta"])
    def health() -> Health:
        """Whether the API is up, the kind of warehouse it reads, and whether one exists."""
        return Health(status="ok", warehouse=warehouse.kind(), warehouse_built=warehouse.exists())

    @app.get(
        "/datasets",
        response_model=list[DatasetInfo],
        tags=["meta"],
        dependencies=guarded,
    )
    def datasets() -> list[DatasetInfo]:
        """Every dataset: its endpoint, relation, key, filters, columns (with their dbt
        descriptions) and whether it has been built."""
        built: set[str] = set()
        if warehouse.exists():
            with reader.connection() as con:
                built = {
                    f"{s}.{t}"
                    for s, t in con.execute(
                        "select schema_name, table_name from duckdb_tables() "
                        "where database_name = ? union all select schema_name, view_name "
                        "from duckdb_views() where database_name = ?",
                        [warehouse.DATABASE, warehouse.DATABASE],
                    ).fetchall()
                }
        return [
            DatasetInfo(
                name=d.name,
                path=d.path,
                relation=d.relation,
                description=docs.get(d.model, {}).get("description") or d.summary,
                time_column=d.time_column,
                key=list(d.key),
                filters=[f.name for f in d.filters],
                built=d.relation in built,
                columns=docs.get(d.model, {}).get("columns", {}),
            )
            for d in DATASETS
        ]

    for dataset in DATASETS:
        model = docs.get(dataset.model, {})
        columns = "\n".join(
            f"- `{name}`: {text}" for name, text in model.get("columns", {}).items()
        )
        app.add_api_route(
            dataset.path,
            _endpoint(dataset, reader),
            methods=["GET"],
            dependencies=guarded,
            summary=dataset.summary,
            description=(
                f"`{dataset.relation}`, ordered by {', '.join(dataset.key)}. "
                + (model.get("description") or "")
                + (f"\n\nColumns:\n\n{columns}" if columns else "")
            ),
            tags=[dataset.name.split("/")[0]],
            response_class=Response,
            responses={
                200: {
                    "model": Page,
                    "content": {"text/csv": {}, "application/vnd.apache.parquet": {}},
                    "description": "A page of rows (JSON), or the rows as CSV or Parquet.",
                },
                401: {"description": "A bearer token is set and this request lacks it."},
                404: {"description": "An unknown filter value, or a mart not built yet."},
                422: {"description": "A malformed parameter or cursor, or start after end."},
                503: {"description": "No warehouse yet, or the DuckDB file is being written."},
            },
        )
    app.state.reader = reader
    return app


def serve(host: str, port: int) -> int:
    """Serve the API with uvicorn until interrupted (``mkt-platform api``)."""
    import ipaddress

    import uvicorn

    token = settings.api_token()
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and token is None:
        log.warning(
            "the API listens on %s with no MKT_API_TOKEN: anyone who reaches the port reads "
            "the warehouse",
            host,
        )
    if warehouse.kind() == "duckdb":
        log.warning(
            "the warehouse is the DuckDB file %s: a dbt run that starts while a request has it "
            "open fails on its lock (benchmarks/api_latency.py --warehouse duckdb); to serve "
            "while the platform writes, use MKT_WAREHOUSE=ducklake",
            warehouse.describe(),
        )
    uvicorn.run(create_app(token), host=host, port=port, log_level="info")
    return 0
