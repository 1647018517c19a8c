"""Hyperliquid info API client: candles, funding history and asset contexts (``POST /info``).

Endpoint docs:
https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/info-endpoint
https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/info-endpoint/perpetuals

Every request is ``POST {base_url}/info`` with a JSON body whose ``type`` selects the data.
Payloads are validated against the contracts of :mod:`mkt_platform.defs.hyperliquid.contract`:
a broken record raises :class:`~mkt_platform.lib.contracts.ContractViolation`, while a field
the contract does not know is reported (not an error) in
:attr:`HyperliquidClient.last_added_fields`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

import dagster as dg
import httpx
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import PrivateAttr

from mkt_platform.defs.hyperliquid.contract import (
    ASSET_CTX_CONTRACT,
    ASSET_CTX_LAKE_SCHEMA,
    CANDLE_CONTRACT,
    FUNDING_CONTRACT,
    INTERVAL_MS,
    INTERVALS,
)
from mkt_platform.lib import quarantine
from mkt_platform.lib.contracts import (
    ContractViolation,
    MalformedResponse,
    ObjectContract,
    check_page_size,
)
from mkt_platform.lib.http import (
    ExchangeAPIError,
    ExchangeClient,
    ExchangeTransportError,
    PullProgress,
    RetryableResponse,
    decode_json_body,
    time_pages,
)

#: The live API; deployments set ``base_url`` from env ``HYPERLIQUID_BASE_URL``.
from mkt_platform.settings import DEFAULT_HYPERLIQUID_BASE_URL

T = TypeVar("T")

INFO_PATH = "/info"
#: Hyperliquid answers at most 5000 candles a ``candleSnapshot`` request.
MAX_CANDLES_PER_REQUEST = 5000
#: Hyperliquid answers at most 500 records a ``fundingHistory`` request.
MAX_FUNDING_PER_REQUEST = 500


class HyperliquidAPIError(ExchangeAPIError):
    """Hyperliquid refused a request (a 4xx other than 429): not retried. Its error is often
    plain text (e.g. 422 ``Failed to deserialize the JSON body into the target type``):
    ``body`` holds it, at most 1000 characters."""

    venue = "Hyperliquid"

    @property
    def body(self) -> str:
        return self.message


class HyperliquidTransportError(ExchangeTransportError):
    """The connection to Hyperliquid failed (timeout, refused, body cut off) on every attempt."""


#: A retryable Hyperliquid answer: a 5xx or 429.
HyperliquidRetryableResponse = RetryableResponse


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def describe_request(kind: str, coin: str | None = None, **extra: Any) -> str:
    """``POST /info type=... coin=... [interval=...] [ISO start, ISO end]`` for messages."""
    parts = [f"POST {INFO_PATH} type={kind}"]
    if coin is not None:
        parts.append(f"coin={coin}")
    start, end = extra.pop("start_ms", None), extra.pop("end_ms", None)
    parts.extend(f"{key}={value}" for key, value in extra.items())
    if start is not None:
        parts.append(f"[{_iso(start)}, {_iso(end) if end is not None else '...'}]")
    return " ".join(parts)


class HyperliquidClient(ExchangeClient):
    """Hyperliquid perpetuals market-data client (public info endpoint; no key needed).

    Retries, with exponential backoff and jitter, timeouts, connection errors, 5xx answers
    and 429 (rate limit), waiting ``Retry-After`` seconds when it is sent; any other 4xx fails
    at once with :class:`HyperliquidAPIError` carrying the status and body.

    After each ``fetch_*`` call, :attr:`last_added_fields` holds the JSON keys that arrived
    but are not in the contract (schema drift: they are dropped, and a warning is logged).
    It describes the last fetch of this instance only, so share an instance between threads
    only if you do not read it.
    """

    venue: ClassVar[str] = HyperliquidAPIError.venue

    base_url: str = DEFAULT_HYPERLIQUID_BASE_URL

    _last_added_fields: tuple[str, ...] = PrivateAttr(default=())

    @property
    def last_added_fields(self) -> tuple[str, ...]:
        """Undeclared JSON keys seen by the last ``fetch_*`` call, sorted (empty if none)."""
        return self._last_added_fields

    # -- candles -------------------------------------------------------------------------

    def fetch_candles(self, coin: str, interval: str, start_ms: int, end_ms: int) -> pa.Table:
        """All candles of ``coin`` opening in ``[start_ms, end_ms]``, paginated.

        Endpoint: ``POST /info {"type": "candleSnapshot", "req": {coin, interval, startTime,
        endTime}}``. Hyperliquid answers the candles *overlapping* the range, so the first one
        may open before ``startTime``; such candles are dropped here. Pages hold at most 5000
        candles; the next page starts at the last close time + 1 ms (= last open + interval).

        Args:
            coin: perp coin name, e.g. ``BTC`` or ``kPEPE``.
            interval: Hyperliquid interval, e.g. ``1h`` (see ``contract.INTERVALS``).
            start_ms: first open time, UTC milliseconds, inclusive.
            end_ms: last open time, UTC milliseconds, inclusive.

        Returns:
            A table with ``CANDLE_LAKE_SCHEMA`` (coin, open_time, close_time, interval,
            open/high/low/close/volume as DECIMAL(38,8), trades), ascending by open time,
            without duplicates. Hyperliquid only keeps the most recent 5000 candles of each
            coin/interval, so older ranges come back short or empty.

        Raises:
            ValueError: ``interval`` is not a Hyperliquid interval.
            ContractViolation: a response is not JSON, a candle breaks the contract, is for
                another coin/interval, has ``T != t + interval - 1``, is out of order, or
                does not overlap the requested range.
            HyperliquidAPIError: Hyperliquid refused the request.
            HyperliquidRetryableResponse: still 5xx/429 after ``max_attempts``.
            HyperliquidTransportError: the connection still failed after ``max_attempts``.
        """
        if interval not in INTERVALS:
            raise ValueError(f"unknown Hyperliquid interval {interval!r}; use {sorted(INTERVALS)}")
        added: set[str] = set()

        def fetch_page(cursor: int) -> pa.Table:
            source = describe_request(
                "candleSnapshot", coin, interval=interval, start_ms=cursor, end_ms=end_ms
            )
            body = {
                "type": "candleSnapshot",
                "req": {"coin": coin, "interval": interval, "startTime": cursor, "endTime": end_ms},
            }

            return self._page(
                http,
                body,
                source,
                CANDLE_CONTRACT,
                MAX_CANDLES_PER_REQUEST,
                "candles",
                lambda table: _check_candles(table, coin, interval, cursor, end_ms, source),
                added,
            )

        def stalled(cursor: int, following: int) -> ContractViolation:
            # Cannot happen with valid candles (each closes after it opens); never loop.
            return ContractViolation(
                CANDLE_CONTRACT.dataset,
                describe_request(
                    "candleSnapshot", coin, interval=interval, start_ms=cursor, end_ms=end_ms
                ),
                "T",
                f"a last close time >= startTime {cursor}",
                str(following - 1),
            )

        with self._http() as http:
            pages = time_pages(
                start_ms,
                end_ms,
                fetch_page,
                page_size=MAX_CANDLES_PER_REQUEST,
                time_column="open_time",
                # the next page starts at the last close time + 1 ms (= last open + interval)
                next_start=lambda page: page["close_time"][-1].value + 1,
                progress=PullProgress(f"{coin} {interval} candles"),
                stalled=stalled,
            )
        self._report_added(CANDLE_CONTRACT.dataset, added)
        table = _concat(pages, CANDLE_CONTRACT.arrow_schema())
        opens = pc.cast(table["open_time"], pa.int64())
        table = table.filter(
            pc.and_(pc.greater_equal(opens, start_ms), pc.less_equal(opens, end_ms))
        )
        return _dedupe_sorted(table, "open_time", CANDLE_CONTRACT.dataset, coin)

    # -- funding -------------------------------------------------------------------------

    def fetch_funding_history(self, coin: str, start_ms: int, end_ms: int) -> pa.Table:
        """All funding records of ``coin`` with time in ``[start_ms, end_ms]``, paginated.

        Endpoint: ``POST /info {"type": "fundingHistory", coin, startTime, endTime}``. Pages
        hold at most 500 records; the next page starts at the last time + 1 ms, until a page
        is shorter than 500 or reaches ``end_ms``.

        Returns:
            A table with ``FUNDING_LAKE_SCHEMA`` (coin, time as sent with its ms jitter,
            funding_rate and premium as DECIMAL(38,12)), ascending by time, no duplicates.

        Raises:
            ContractViolation: a response is not JSON, a record breaks the contract, is for
                another coin, is out of order or outside the requested range.
            HyperliquidAPIError, HyperliquidRetryableResponse, HyperliquidTransportError:
                as for :meth:`fetch_candles`.
        """
        added: set[str] = set()

        def fetch_page(cursor: int) -> pa.Table:
            source = describe_request("fundingHistory", coin, start_ms=cursor, end_ms=end_ms)
            body = {"type": "fundingHistory", "coin": coin, "startTime": cursor, "endTime": end_ms}

            return self._page(
                http,
                body,
                source,
                FUNDING_CONTRACT,
                MAX_FUNDING_PER_REQUEST,
                "funding records",
                lambda table: _check_funding(table, coin, cursor, end_ms, source),
                added,
            )

        with self._http() as http:
            pages = time_pages(
                start_ms,
                end_ms,
                fetch_page,
                page_size=MAX_FUNDING_PER_REQUEST,
                time_column="time",
                next_start=lambda page: page["time"][-1].value + 1,
                progress=PullProgress(f"{coin} funding history"),
            )
        self._report_added(FUNDING_CONTRACT.dataset, added)
        table = _concat(pages, FUNDING_CONTRACT.arrow_schema())
        return _dedupe_sorted(table, "time", FUNDING_CONTRACT.dataset, coin)

    # -- asset contexts ------------------------------------------------------------------

    def fetch_asset_contexts(self) -> pa.Table:
        """Current context of every perp coin: one row per coin of the meta universe.

        Endpoint: ``POST /info {"type": "metaAndAssetCtxs"}``, answered ``[meta, ctxs]``
        where ``ctxs[i]`` belongs to ``meta["universe"][i]["name"]``.

        Returns:
            A table with ``ASSET_CTX_LAKE_SCHEMA``: ``coin`` then the context fields (prices
            DECIMAL(38,8); funding, premium, open interest, 24h volumes DECIMAL(38,12);
            premium, mid_px and impact prices nullable), in universe order.

        Raises:
            ContractViolation: the answer is not ``[meta, ctxs]``, a universe entry has no
                string ``name``, the two lists differ in length, or a context breaks the
                contract.
            HyperliquidAPIError, HyperliquidRetryableResponse, HyperliquidTransportError:
                as for :meth:`fetch_candles`.
        """
        source = describe_request("metaAndAssetCtxs")
        with self._http() as http:
            table, added = self._post(
                http, {"type": "metaAndAssetCtxs"}, source, lambda p: _asset_contexts(p, source)
            )
        self._report_added(ASSET_CTX_CONTRACT.dataset, added)
        return table

    # -- HTTP ----------------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        return self._client(self.base_url)

    def _post(
        self,
        http: httpx.Client,
        body: dict[str, Any],
        source: str,
        validate: Callable[[Any], T],
    ) -> T:
        """POST ``body`` to /info with retries and validate the decoded answer; a body that
        breaks the contract is quarantined (``exc.quarantine_path``) before re-raising."""
        response, payload = self._fetch(
            lambda: self._send(http, body, source),
            lambda response: decode_json_body(
                response, source, _dataset_of(body["type"]), "a JSON body"
            ),
            HyperliquidTransportError,
            source,
        )
        with quarantine.on_violation(response.content):
            return validate(payload)

    def _page(
        self,
        http: httpx.Client,
        body: dict[str, Any],
        source: str,
        contract: ObjectContract,
        page_size: int,
        what: str,
        check: Callable[[pa.Table], None],
        added: set[str],
    ) -> pa.Table:
        """One page of a paged info request: no more records than asked for, each valid
        against ``contract``, then ``check`` (coin, order, range) on a non-empty table; the
        keys Hyperliquid added join ``added``."""

        def validate(payload: Any) -> Any:
            if isinstance(payload, list):
                check_page_size(contract.dataset, source, len(payload), page_size, what)
            validated = contract.to_table(payload, source)
            if validated.table.num_rows:
                check(validated.table)
            return validated

        validated = self._post(http, body, source, validate)
        added.update(validated.added_fields)
        return validated.table

    def _send(self, http: httpx.Client, body: dict[str, Any], source: str) -> httpx.Response:
        response = self._request(http, "POST", INFO_PATH, source, json=body)
        status = response.status_code

        def refused(reason: str | None) -> HyperliquidAPIError:
            text = f"{reason}: {response.text}" if reason else response.text
            return HyperliquidAPIError(status, None, text, source)

        return self._checked(
            response, source, retryable=status == 429 or status >= 500, refused=refused
        )

    def _report_added(self, dataset: str, added: set[str]) -> None:
        self._last_added_fields = tuple(sorted(added))
        if added:
            dg.get_dagster_logger().warning(
                f"{dataset}: Hyperliquid sent fields the contract does not declare "
                f"(dropped): {sorted(added)}"
            )


def _asset_contexts(payload: Any, source: str) -> tuple[pa.Table, set[str]]:
    """The ``[meta, ctxs]`` answer as an asset-context table and its undeclared keys."""
    dataset = ASSET_CTX_CONTRACT.dataset
    if not (isinstance(payload, list) and len(payload) == 2 and isinstance(payload[0], dict)):
        raise ContractViolation(
            dataset, source, None, "a JSON array [meta, assetCtxs]", _describe(payload)
        )
    meta, ctxs = payload
    universe = meta.get("universe")
    if not isinstance(universe, list):
        raise ContractViolation(
            dataset, source, "universe", "a JSON array in meta", _describe(universe)
        )
    coins: list[str] = []
    for index, asset in enumerate(universe):
        name = asset.get("name") if isinstance(asset, dict) else None
        if type(name) is not str:
            raise ContractViolation(
                dataset,
                source,
                "universe.name",
                "a string coin name",
                f"universe entry {index}: {_describe(asset)}",
            )
        coins.append(name)
    validated = ASSET_CTX_CONTRACT.to_table(ctxs, source)
    if validated.table.num_rows != len(coins):
        raise ContractViolation(
            dataset,
            source,
            None,
            f"one asset context per universe coin ({len(coins)})",
            f"{validated.table.num_rows} asset contexts",
        )
    coin_column = pa.array(coins, type=pa.string())
    table = validated.table.add_column(0, ASSET_CTX_LAKE_SCHEMA.field("coin"), coin_column)
    return table, set(validated.added_fields)


def _dataset_of(kind: str) -> str:
    return {
        "candleSnapshot": CANDLE_CONTRACT.dataset,
        "fundingHistory": FUNDING_CONTRACT.dataset,
    }.get(kind, ASSET_CTX_CONTRACT.dataset)


def _describe(value: Any) -> str:
    return f"{type(value).__name__}: {value!r}"


def _ints(table: pa.Table, column: str) -> list[int]:
    return pc.cast(table[column], pa.int64()).to_pylist()


def _check_ascending(values: list[int], dataset: str, source: str, field: str, what: str) -> None:
    for index, (before, after) in enumerate(itertools.pairwise(values)):
        if after <= before:
            raise MalformedResponse(
                dataset,
                source,
                field,
                f"strictly ascending {what}",
                f"{after} after {before} at record {index + 1}",
            )


def _check_candles(
    page: pa.Table, coin: str, interval: str, start_ms: int, end_ms: int, source: str
) -> None:
    """Candles are this coin/interval, ascending, well formed and overlap the range."""
    dataset = CANDLE_CONTRACT.dataset
    for key, column, expected in (("s", "coin", coin), ("i", "interval", interval)):
        values = page[column].to_pylist()
        for index, value in enumerate(values):
            if value != expected:
                raise ContractViolation(
                    dataset, source, key, repr(expected), f"{value!r} in record {index}"
                )
    opens, closes = _ints(page, "open_time"), _ints(page, "close_time")
    _check_ascending(opens, dataset, source, "t", "open times")
    step = INTERVAL_MS.get(interval)
    for index, (open_ms, close_ms) in enumerate(zip(opens, closes, strict=True)):
        if (step is not None and close_ms != open_ms + step - 1) or close_ms < open_ms:
            raise ContractViolation(
                dataset,
                source,
                "T",
                f"t + {step} - 1" if step is not None else "T >= t",
                f"T={close_ms} for t={open_ms} in record {index}",
            )
    if closes[0] < start_ms or opens[-1] > end_ms:
        raise ContractViolation(
            dataset,
            source,
            "t",
            f"candles overlapping [{start_ms}, {end_ms}]",
            f"open times [{opens[0]}, {opens[-1]}], first close {closes[0]}",
        )


def _check_funding(page: pa.Table, coin: str, start_ms: int, end_ms: int, source: str) -> None:
    """Records are this coin's, strictly ascending and inside the range."""
    dataset = FUNDING_CONTRACT.dataset
    for index, value in enumerate(page["coin"].to_pylist()):
        if value != coin:
            raise ContractViolation(
                dataset, source, "coin", repr(coin), f"{value!r} in record {index}"
            )
    times = _ints(page, "time")
    _check_ascending(times, dataset, source, "time", "times")
    if times[0] < start_ms or times[-1] > end_ms:
        raise ContractViolation(
            dataset,
            source,
            "time",
            f"times within [{start_ms}, {end_ms}]",
            f"[{times[0]}, {times[-1]}]",
        )


def _concat(pages: list[pa.Table], schema: pa.Schema) -> pa.Table:
    return pa.concat_tables(pages) if pages else schema.empty_table()


def _dedupe_sorted(table: pa.Table, column: str, dataset: str, coin: str) -> pa.Table:
    """``table`` sorted by ``column`` keeping one row per value; rows that share a value
    but differ elsewhere are a violation (two pages disagreeing about the same candle)."""
    if table.num_rows == 0:
        return table
    table = table.sort_by(column)
    keys = _ints(table, column)
    keep = [0]
    for index in range(1, len(keys)):
        if keys[index] != keys[index - 1]:
            keep.append(index)
            continue
        if table.slice(index, 1).to_pylist() != table.slice(keep[-1], 1).to_pylist():
            raise ContractViolation(
                dataset,
                f"{coin} pages",
                column,
                "identical records for the same time across pages",
                f"{table.slice(index, 1).to_pylist()[0]}",
            )
    if len(keep) == table.num_rows:
        return table
    return table.take(pa.array(keep, type=pa.int64()))
