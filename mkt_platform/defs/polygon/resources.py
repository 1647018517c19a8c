"""Polygon REST client: aggregate bars (``GET /v2/aggs/ticker/{ticker}/range/{multiplier}/
{timespan}/{from}/{to}``), the options contracts listing (``GET /v3/reference/options/
contracts``) and news (``GET /v2/reference/news``), with ``next_url`` paging, retries and a
contract each; the market status now and the upcoming holidays (``GET /v1/marketstatus/now``,
``/v1/marketstatus/upcoming``).

The API key comes from the environment (``POLYGON_API_KEY``) and is sent as Polygon accepts
it, in the ``Authorization: Bearer`` header: never in a URL, so never in a log line, a
``source`` of a message, or Dagster's metadata. ``next_url`` is followed only on the
configured base URL's origin, so the key never goes to another host.

Endpoint docs: https://polygon.io/docs/rest/stocks/aggregates/custom-bars
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
import pyarrow as pa

from mkt_platform import settings
from mkt_platform.defs.polygon.contract import (
    AGG_CONTRACT,
    AGGS_LAKE_SCHEMA,
    NEWS_CONTRACT,
    NEWS_LAKE_SCHEMA,
    OPTIONS_CONTRACT_CONTRACT,
)
from mkt_platform.lib import quarantine
from mkt_platform.lib.contracts import UTC_MS, ContractViolation
from mkt_platform.lib.http import (
    ExchangeAPIError,
    ExchangeClient,
    ExchangeTransportError,
    decode_json_body,
)

#: Polygon serves at most 50,000 aggregate bars a page.
MAX_AGGS_LIMIT = 50_000
#: Polygon serves at most 1,000 options contracts a page.
MAX_CONTRACTS_LIMIT = 1000
#: The options contracts listing.
CONTRACTS_PATH = "/v3/reference/options/contracts"
#: Polygon serves at most 1,000 news articles a page.
MAX_NEWS_LIMIT = 1000
NEWS_PATH = "/v2/reference/news"
MARKET_STATUS_PATH = "/v1/marketstatus/now"
UPCOMING_PATH = "/v1/marketstatus/upcoming"
#: A header by which a server (the replay) says its answer is SYNTHETIC, not market data; its
#: value is kept in the returned table's schema metadata (``synthetic``).
SYNTHETIC_HEADER = "X-Replay-Synthetic"
#: The ``status`` values of an answer that carries data.
DATA_STATUSES = frozenset({"OK", "DELAYED"})


class PolygonAPIError(ExchangeAPIError):
    """Polygon refused a request (a 4xx other than 429, e.g. 401 without a valid key, 403
    outside the plan): not retried. ``message`` is Polygon's ``error`` or ``message``."""

    venue = "Polygon"


class PolygonTransportError(ExchangeTransportError):
    """The connection to Polygon failed (timeout, refused, body cut off) on every attempt."""


class PolygonSettingError(RuntimeError):
    """The Polygon client cannot work as configured (no API key)."""


def aggregates_path(ticker: str, multiplier: int, timespan: str, start: str, end: str) -> str:
    """The aggregates endpoint's path for ``ticker`` (``SPY``, ``O:SPY250902C00625000``,
    ``I:VIX``) between ``start`` and ``end`` (``YYYY-MM-DD`` dates, inclusive, or UTC ms)."""
    return f"/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{start}/{end}"


class PolygonClient(ExchangeClient):
    """Polygon market-data client.

    Retries, with exponential backoff and jitter, timeouts, connection errors, 5xx answers and
    429 (rate limit), waiting ``Retry-After`` seconds when Polygon sends it; any other 4xx
    fails at once with Polygon's message. ``api_key`` is a secret (set it from
    ``dagster.EnvVar("POLYGON_API_KEY")``): it is only ever sent in a request header.
    """

    venue: ClassVar[str] = PolygonAPIError.venue

    base_url: str = settings.DEFAULT_POLYGON_BASE_URL
    api_key: str = ""

    def fetch_aggregates(
        self,
        ticker: str,
        multiplier: int,
        timespan: str,
        start: str,
        end: str,
        *,
        adjusted: bool = True,
        limit: int = MAX_AGGS_LIMIT,
    ) -> pa.Table:
        """Every ``multiplier``-``timespan`` bar of ``ticker`` from ``start`` to ``end``
        (dates are New York trading dates to Polygon: a minute range of one date runs from
        04:00 to 20:00 New York time), following ``next_url`` page by page.

        Returns:
            A table with :data:`~mkt_platform.defs.polygon.contract.AGGS_LAKE_SCHEMA`, one row
            per bar, ascending by ``bar_time`` (UTC ms), prices in USD and volumes in shares
            (contracts for an option) as DECIMAL(38,8), exactly as sent.

        Raises:
            PolygonSettingError: no API key is configured.
            PolygonAPIError: Polygon refused the request (401: the key; 403: the plan).
            PolygonTransportError: every attempt failed to connect or was cut off.
            mkt_platform.lib.contracts.ContractViolation: an answer broke its contract (names
                the endpoint, the ticker and the field), or paged to another host; the body
                is quarantined first.
        """
        self._require_key()
        path = aggregates_path(ticker, multiplier, timespan, start, end)
        params = {"adjusted": str(adjusted).lower(), "sort": "asc", "limit": limit}
        pages = self._paged(
            path,
            params,
            f"ticker={ticker}",
            AGG_CONTRACT.dataset,
            lambda payload, source: self._bars(payload, ticker, source),
        )
        table = pa.concat_tables(pages) if pages else AGGS_LAKE_SCHEMA.empty_table()
        return table.sort_by("bar_time").replace_schema_metadata(
            pages[0].schema.metadata if pages else None
        )

    def fetch_options_contracts(
        self,
        underlying: str,
        as_of: str,
        expiration_from: str,
        expiration_to: str,
        strike_min: Decimal,
        strike_max: Decimal,
    ) -> pa.Table:
        """The options contracts on ``underlying`` that were listed on ``as_of`` (a New York
        date), expiring from ``expiration_from`` to ``expiration_to`` (dates, inclusive),
        with strikes from ``strike_min`` to ``strike_max`` (USD, inclusive), following
        ``next_url`` (1,000 a page). Source: ``GET /v3/reference/options/contracts``.

        Returns:
            A table with the fields of :data:`OPTIONS_CONTRACT_CONTRACT`, one row per
            contract, sorted by expiration, strike and type.

        Raises:
            PolygonSettingError, PolygonAPIError, PolygonTransportError: as
                :meth:`fetch_aggregates`.
            mkt_platform.lib.contracts.ContractViolation: a contract broke its contract, is
                on another underlying, or lies outside the filters asked (the body is
                quarantined first).
        """
        self._require_key()
        params = {
            "underlying_ticker": underlying,
            "as_of": as_of,
            "expiration_date.gte": expiration_from,
            "expiration_date.lte": expiration_to,
            "strike_price.gte": str(strike_min),
            "strike_price.lte": str(strike_max),
            "expired": "false",
            "order": "asc",
            "sort": "ticker",
            "limit": MAX_CONTRACTS_LIMIT,
        }
        dataset = OPTIONS_CONTRACT_CONTRACT.dataset

        def parse(payload: dict, source: str) -> pa.Table:
            _data_status(payload, dataset, source)
            table = OPTIONS_CONTRACT_CONTRACT.to_table(payload.get("results"), source).table
            for index, row in enumerate(table.to_pylist()):
                where = f"contract {index} ({row['ticker']!r})"
                if row["underlying_ticker"] != underlying:
                    raise ContractViolation(
                        dataset,
                        source,
                        "underlying_ticker",
                        underlying,
                        f"{row['underlying_ticker']!r} in {where}",
                    )
                if not expiration_from <= row["expiration_date"] <= expiration_to:
                    raise ContractViolation(
                        dataset,
                        source,
                        "expiration_date",
                        f"{expiration_from}..{expiration_to} (the filter asked)",
                        f"{row['expiration_date']} in {where}",
                    )
                if not strike_min <= row["strike_price"] <= strike_max:
                    raise ContractViolation(
                        dataset,
                        source,
                        "strike_price",
                        f"{strike_min}..{strike_max} (the filter asked)",
                        f"{row['strike_price']} in {where}",
                    )
            return table

        pages = self._paged(
            CONTRACTS_PATH, params, f"underlying_ticker={underlying} as_of={as_of}", dataset, parse
        )
        schema = OPTIONS_CONTRACT_CONTRACT.arrow_schema()
        table = pa.concat_tables(pages) if pages else schema.empty_table()
        return table.sort_by(
            [
                ("expiration_date", "ascending"),
                ("strike_price", "ascending"),
                ("contract_type", "ascending"),
            ]
        )

    def fetch_news(self, ticker: str, published_from: datetime, published_to: datetime) -> pa.Table:
        """The news articles on ``ticker`` published from ``published_from`` (inclusive) to
        ``published_to`` (exclusive; both aware datetimes), oldest first, following
        ``next_url`` (1,000 a page). Source: ``GET /v2/reference/news``.

        Returns:
            A table with :data:`NEWS_LAKE_SCHEMA`: one row per article, the publisher's name,
            the tickers it names, and the sentiment Polygon's ``insights`` give on ``ticker``
            (NULL without one).

        Raises:
            PolygonSettingError, PolygonAPIError, PolygonTransportError: as
                :meth:`fetch_aggregates`.
            mkt_platform.lib.contracts.ContractViolation: an article broke its contract
                (``publisher`` not an object, ``insights`` not a list, a sentiment outside
                positive/neutral/negative, a time outside the window asked...).
        """
        self._require_key()
        start = published_from.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        end = published_to.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        params = {
            "ticker": ticker,
            "published_utc.gte": start,
            "published_utc.lt": end,
            "order": "asc",
            "sort": "published_utc",
            "limit": MAX_NEWS_LIMIT,
        }
        dataset = NEWS_CONTRACT.dataset

        def parse(payload: dict, source: str) -> pa.Table:
            _data_status(payload, dataset, source)
            articles = payload.get("results")
            if isinstance(articles, list):
                articles = [_flatten_article(a, ticker, dataset, source) for a in articles]
            table = NEWS_CONTRACT.to_table(articles, source).table
            published = []
            for index, text in enumerate(table["published_utc"].to_pylist()):
                try:
                    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
                except ValueError:
                    moment = None
                if (
                    moment is None
                    or moment.tzinfo is None
                    or not published_from <= moment < published_to
                ):
                    raise ContractViolation(
                        dataset,
                        source,
                        "published_utc",
                        f"an ISO 8601 UTC time in {start}..{end} (the window asked)",
                        f"{text!r} in article {index}",
                    )
                published.append(moment)
            n = table.num_rows
            return (
                table.set_column(
                    table.schema.get_field_index("published_utc"),
                    "published_utc",
                    pa.array(published, UTC_MS),
                )
                .add_column(0, "ticker", pa.array([ticker] * n, pa.string()))
                .cast(NEWS_LAKE_SCHEMA)
            )

        pages = self._paged(NEWS_PATH, params, f"ticker={ticker}", dataset, parse)
        table = pa.concat_tables(pages) if pages else NEWS_LAKE_SCHEMA.empty_table()
        return table.sort_by(
            [("published_utc", "ascending"), ("id", "ascending")]
        ).replace_schema_metadata(pages[0].schema.metadata if pages else None)

    def fetch_market_status(self) -> dict[str, Any]:
        """Polygon's market status now (``GET /v1/marketstatus/now``): ``{"market":
        "open" | "closed" | "extended-hours", "serverTime", "exchanges": {"nyse", ...},
        ...}`` as sent.

        Raises:
            PolygonSettingError, PolygonAPIError, PolygonTransportError: as
                :meth:`fetch_aggregates`.
            mkt_platform.lib.contracts.ContractViolation: the answer has no ``market``
                string or no ``exchanges`` object.
        """
        self._require_key()
        source = f"GET {MARKET_STATUS_PATH}"
        with self._client(self.base_url) as http:
            http.headers["Authorization"] = f"Bearer {self.api_key}"
            payload, content, _ = self._get(
                http, MARKET_STATUS_PATH, None, source, "polygon_market_status"
            )
        with quarantine.on_violation(content):
            for field, kind in (("market", str), ("exchanges", dict)):
                if not isinstance(payload.get(field), kind):
                    raise ContractViolation(
                        "polygon_market_status",
                        source,
                        field,
                        f"a JSON {kind.__name__}",
                        repr(payload.get(field)),
                    )
        return payload

    def fetch_upcoming_holidays(self) -> list[dict[str, Any]]:
        """The upcoming market holidays and early closes (``GET /v1/marketstatus/upcoming``):
        ``[{"exchange", "name", "date", "status": "closed" | "early-close", "open"?,
        "close"?}]`` as sent (``open``/``close`` ISO UTC times of an early close).

        Raises:
            PolygonSettingError, PolygonAPIError, PolygonTransportError: as
                :meth:`fetch_aggregates`.
            mkt_platform.lib.contracts.ContractViolation: the answer is not a list of objects
                with ``exchange``, ``date`` and ``status``.
        """
        self._require_key()
        source = f"GET {UPCOMING_PATH}"
        with self._client(self.base_url) as http:
            http.headers["Authorization"] = f"Bearer {self.api_key}"
            response = self._request(http, "GET", UPCOMING_PATH, source)
        payload = decode_json_body(response, source, "polygon_upcoming_holidays", "a JSON array")
        with quarantine.on_violation(response.content):
            if not isinstance(payload, list):
                raise ContractViolation(
                    "polygon_upcoming_holidays",
                    source,
                    None,
                    "a JSON array",
                    type(payload).__name__,
                )
            for index, entry in enumerate(payload):
                missing = [
                    k
                    for k in ("exchange", "date", "status")
                    if not isinstance(entry, dict) or not isinstance(entry.get(k), str)
                ]
                if missing:
                    raise ContractViolation(
                        "polygon_upcoming_holidays",
                        source,
                        missing[0],
                        "a string",
                        f"entry {index}: {entry!r}",
                    )
        return payload

    def _require_key(self) -> None:
        if not self.api_key:
            raise PolygonSettingError(
                "POLYGON_API_KEY is not set: Polygon answers only requests that carry an API "
                "key (set it in the environment of the Dagster processes; it is never logged)"
            )

    def _paged(
        self,
        path: str,
        params: dict[str, Any],
        what: str,
        dataset: str,
        parse: Callable[[dict, str], pa.Table],
    ) -> list[pa.Table]:
        """Every page of ``path``, from ``params`` then each ``next_url``, parsed by
        ``parse(payload, source)``; a page that breaks its contract is quarantined."""
        url: str | None = path
        query: dict[str, Any] | None = params
        pages = []
        synthetic: set[str] = set()
        with self._client(self.base_url) as http:
            http.headers["Authorization"] = f"Bearer {self.api_key}"
            page = 0
            while url is not None:
                page += 1
                source = f"GET {path} {what} page {page}"
                payload, content, label = self._get(http, url, query, source, dataset)
                with quarantine.on_violation(content):
                    pages.append(parse(payload, source))
                    url = self._next(payload.get("next_url"), source, dataset)
                if label:
                    synthetic.add(label)
                query = None  # next_url carries the query
        if synthetic:  # said by the server: kept with the data, in the schema metadata
            note = "; ".join(sorted(synthetic)).encode()
            pages = [
                p.replace_schema_metadata({**(p.schema.metadata or {}), b"synthetic": note})
                for p in pages
            ]
        return pages

    def _get(
        self,
        http: httpx.Client,
        url: str,
        params: dict[str, Any] | None,
        source: str,
        dataset: str,
        shape: type = dict,
    ) -> tuple[Any, bytes, str | None]:
        def send() -> httpx.Response:
            response = self._request(http, "GET", url, source, params=params)
            status = response.status_code

            def refused(reason: str | None) -> PolygonAPIError:
                return PolygonAPIError(status, None, reason or _polygon_error(response), source)

            return self._checked(
                response, source, retryable=status == 429 or status >= 500, refused=refused
            )

        response, payload = self._fetch(
            send, lambda r: _decode(r, source, dataset, shape), PolygonTransportError, source
        )
        return payload, response.content, response.headers.get(SYNTHETIC_HEADER)

    def _bars(self, payload: dict, ticker: str, source: str) -> pa.Table:
        dataset = AGG_CONTRACT.dataset
        _data_status(payload, dataset, source)
        if payload.get("ticker") != ticker:
            raise ContractViolation(dataset, source, "ticker", ticker, repr(payload.get("ticker")))
        # Polygon leaves "results" out of an answer with no bar.
        results = payload.get("results", [] if payload.get("resultsCount") == 0 else None)
        bars = AGG_CONTRACT.to_table(results, source).table
        n = bars.num_rows
        return bars.add_column(0, "ticker", pa.array([ticker] * n, pa.string())).cast(
            AGGS_LAKE_SCHEMA
        )

    def _next(self, next_url: object, source: str, dataset: str) -> str | None:
        """The next page's URL, only on the configured origin (the key goes with it)."""
        if next_url is None:
            return None
        base = urlsplit(self.base_url)
        nxt = urlsplit(str(next_url))
        if not isinstance(next_url, str) or (nxt.scheme, nxt.netloc) != (base.scheme, base.netloc):
            raise ContractViolation(
                dataset,
                source,
                "next_url",
                f"a URL on {base.scheme}://{base.netloc}",
                f"{nxt.scheme}://{nxt.netloc}" if isinstance(next_url, str) else repr(next_url),
            )
        return next_url


def _flatten_article(article: Any, ticker: str, dataset: str, source: str) -> Any:
    """An article with ``publisher.name``, ``tickers[]`` and the ``insights[]`` entry on
    ``ticker`` lifted into plain keys (what :data:`NEWS_CONTRACT` declares); anything but an
    object is returned as is, for the contract to refuse."""
    if not isinstance(article, dict):
        return article
    where = f"article {article.get('id')!r}"
    flat = dict(article)
    publisher = article.get("publisher")
    if not isinstance(publisher, dict):
        raise ContractViolation(
            dataset, source, "publisher", "a JSON object", f"{publisher!r} in {where}"
        )
    flat["publisher_name"] = publisher.get("name")
    tickers = article.get("tickers")
    if not isinstance(tickers, list) or not all(isinstance(t, str) for t in tickers):
        raise ContractViolation(
            dataset, source, "tickers", "a JSON array of strings", f"{tickers!r} in {where}"
        )
    flat["tickers_joined"] = ",".join(tickers)
    insights = article.get("insights", [])
    if not isinstance(insights, list) or not all(isinstance(i, dict) for i in insights):
        raise ContractViolation(
            dataset, source, "insights", "a JSON array of objects", f"{insights!r} in {where}"
        )
    mine = [i for i in insights if i.get("ticker") == ticker]
    if mine:
        flat["sentiment"] = mine[0].get("sentiment")
        flat["sentiment_reasoning"] = mine[0].get("sentiment_reasoning")
    return flat


def _data_status(payload: dict, dataset: str, source: str) -> None:
    status = payload.get("status")
    if status not in DATA_STATUSES:
        raise ContractViolation(
            dataset, source, "status", f"one of {sorted(DATA_STATUSES)}", repr(status)
        )


def _decode(response: httpx.Response, source: str, dataset: str, shape: type = dict) -> Any:
    what = "a JSON object" if shape is dict else "a JSON array"
    payload = decode_json_body(response, source, dataset, what, parse_float=Decimal)
    if not isinstance(payload, shape):
        with quarantine.on_violation(response.content):
            raise ContractViolation(dataset, source, None, what, type(payload).__name__)
    return payload


def _polygon_error(response: httpx.Response) -> str:
    """Polygon's error message (``error``, else ``message``), or the body's start."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        return str(body.get("error") or body.get("message") or body)[:300]
    return response.text[:300]
