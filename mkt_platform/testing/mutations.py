"""Ready-made :data:`~mkt_platform.replay.server.Mutation` s for :meth:`ReplayServer.mutate`.

They change the *records* of a replayed answer, for tests of late data and schema drift::

    server.mutate("binance", truncate_from(cutoff_ms))  # the day, before late trades
    ...pull...
    server.clear_mutations("binance")                   # the complete day
    server.mutate("hyperliquid", stringify_field("time", when=matching(coin="BTC")))

Where the records of an answer are (:func:`records`), by the shape of the payload:

* Binance klines: the top-level list of arrays
  (``[openTime, open, high, low, close, volume, closeTime, ...]``).
* Hyperliquid ``candleSnapshot`` and ``fundingHistory``: the top-level list of objects.
  ``metaAndAssetCtxs`` (``[meta, [ctx, ...]]``): the asset contexts, the second element.
* Deribit ``get_last_trades_by_currency_and_time``: ``payload["result"]["trades"]``.

Any other answer (Hyperliquid ``meta``, error bodies) has no records and is left alone.

A record's time (:func:`record_time`, UTC ms) is element 0 of an array (Binance open time)
and, for objects, ``"t"`` (Hyperliquid candle open time), ``"time"`` (Hyperliquid funding)
or ``"timestamp"`` (Deribit trade). A field is named by key in objects and by position
(``int``) in arrays. Records that do not have the field are skipped, so one mutation can
serve an exchange whose answers differ in shape (Hyperliquid candles and funding).

Every function takes an optional ``when(request) -> bool``; the mutation then only applies
to the requests for which it is true (:func:`matching` builds the common ones).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any, TypeAlias

from mkt_platform.replay.server import Mutation, RecordedRequest

#: A field of a record: a key for objects, a position for arrays.
Field: TypeAlias = str | int
#: Restricts a mutation to some requests.
When: TypeAlias = Callable[[RecordedRequest], bool]
#: Selects records.
Match: TypeAlias = Callable[[Any], bool]

# Keys of a record's time in objects, in order of precedence (a Hyperliquid candle has both
# ``t`` and ``T``; its open time ``t`` is the one that counts).
_TIME_KEYS = ("t", "time", "timestamp")


def records(payload: Any) -> list[Any]:
    """The list of records of a decoded answer (the payload's own list, not a copy).

    Changing it in place changes the payload. An answer without records gives a new empty
    list.
    """
    if isinstance(payload, list):
        # Hyperliquid metaAndAssetCtxs: [meta, [ctx, ...]].
        if len(payload) == 2 and isinstance(payload[0], dict) and isinstance(payload[1], list):
            return payload[1]
        return payload
    trades = _deribit_result(payload).get("trades")
    return trades if isinstance(trades, list) else []


def record_time(record: Any) -> int | None:
    """The time (UTC ms) of a record, or ``None`` when it has none (asset contexts)."""
    if isinstance(record, list):
        return record[0] if record and type(record[0]) is int else None
    if isinstance(record, dict):
        for key in _TIME_KEYS:
            if type(record.get(key)) is int:
                return record[key]
    return None


def matching(**params: Any) -> When:
    """A ``when`` that is true for requests with every given parameter, e.g. ``coin="BTC"``.

    A parameter is looked up in the query string (``symbol=BTCUSDT``, compared as text), in
    a JSON object body, and in its ``"req"`` object (Hyperliquid ``candleSnapshot``).
    """

    def when(request: RecordedRequest) -> bool:
        body: dict[str, Any] = {}
        if request.body:
            try:
                decoded = request.json()
            except ValueError:
                decoded = None
            if isinstance(decoded, dict):
                body = {
                    **decoded,
                    **(decoded["req"] if isinstance(decoded.get("req"), dict) else {}),
                }
        for name, value in params.items():
            if request.query.get(name) != [str(value)] and body.get(name, _MISSING) != value:
                return False
        return True

    return when


def truncate_from(cutoff_ms: int, when: When | None = None) -> Mutation:
    """Drop the records whose time is ``>= cutoff_ms``: the answer the exchange gave before
    the late data arrived. Records without a time are kept.

    For Deribit, when a trade was dropped ``result.has_more`` becomes false, so a client
    paging with ``sorting=asc`` stops instead of asking for the dropped tail forever.
    """

    def mutation(request: RecordedRequest, payload: Any) -> Any:
        rows = records(payload)
        kept = [row for row in rows if (t := record_time(row)) is None or t < cutoff_ms]
        if len(kept) < len(rows):
            rows[:] = kept
            result = _deribit_result(payload)
            if "has_more" in result:
                result["has_more"] = False
        return payload

    return _restricted(mutation, when)


def set_field(
    field: Field,
    value_or_fn: Any,
    match: Match | None = None,
    when: When | None = None,
) -> Mutation:
    """Replace ``field`` in every record that has it (or only in those ``match`` accepts).

    ``value_or_fn`` is the new value, or a function of the old one, e.g. a price up by one:
    ``set_field(4, lambda old: str(Decimal(old) + 1))``.
    """

    def change(record: Any) -> None:
        if _has(record, field) and (match is None or match(record)):
            record[field] = (
                value_or_fn(record[field]) if callable(value_or_fn) else copy.deepcopy(value_or_fn)
            )

    return _per_record(change, when)


def add_field(field: Field, value: Any, when: When | None = None) -> Mutation:
    """Add a field to every record: objects get key ``field`` (set to ``value``); arrays get
    ``value`` appended, Binance's way of adding a field (``field`` is unused for them)."""

    def change(record: Any) -> None:
        if isinstance(record, list):
            record.append(copy.deepcopy(value))
        elif isinstance(record, dict):
            record[field] = copy.deepcopy(value)

    return _per_record(change, when)


def drop_field(field: Field, when: When | None = None) -> Mutation:
    """Delete ``field`` from every record: the key from objects, the position from arrays."""

    def change(record: Any) -> None:
        if _has(record, field):
            del record[field]

    return _per_record(change, when)


def stringify_field(field: Field, when: When | None = None) -> Mutation:
    """Turn ``field`` from a JSON number into its text (``16500`` -> ``"16500"``) in every
    record; values that are not numbers (strings, null, booleans) are left alone."""

    def change(record: Any) -> None:
        if _has(record, field):
            value = record[field]
            if type(value) in (int, float):
                record[field] = json.dumps(value)

    return _per_record(change, when)


# -- helpers -----------------------------------------------------------------------------

_MISSING = object()


def _deribit_result(payload: Any) -> dict[str, Any]:
    """``payload["result"]`` of a JSON-RPC answer, else an empty dict."""
    result = payload.get("result") if isinstance(payload, dict) else None
    return result if isinstance(result, dict) else {}


def _has(record: Any, field: Field) -> bool:
    if isinstance(record, dict):
        return field in record
    return isinstance(record, list) and type(field) is int and -len(record) <= field < len(record)


def _per_record(change: Callable[[Any], None], when: When | None) -> Mutation:
    def mutation(request: RecordedRequest, payload: Any) -> Any:
        for record in records(payload):
            change(record)
        return payload

    return _restricted(mutation, when)


def _restricted(mutation: Mutation, when: When | None) -> Mutation:
    if when is None:
        return mutation

    def restricted(request: RecordedRequest, payload: Any) -> Any:
        return mutation(request, payload) if when(request) else payload

    return restricted
