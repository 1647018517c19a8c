"""Data-quality checks (mkt_platform.lib.quality) over tables built from the real recordings in
shared/data, and over deliberate corruptions of them. Every expected figure is derived here from
the recorded JSON/CSV, never from the checks' own output."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from itertools import pairwise

import pyarrow as pa
import pytest
import yaml

from mkt_platform.defs.binance.contract import INTERVAL_MS, KLINE_CONTRACT, KLINE_LAKE_SCHEMA
from mkt_platform.defs.deribit.contract import OPTION_TRADE_LAKE_SCHEMA, validate_trades
from mkt_platform.defs.deribit.instruments import parse_instrument_name
from mkt_platform.defs.hyperliquid.contract import CANDLE_CONTRACT, FUNDING_CONTRACT
from mkt_platform.lib import quality
from mkt_platform.lib.quality import (
    CheckOutcome,
    expected_candles,
    instrument_names_parse,
    merge,
    no_duplicate_keys,
    non_negative,
    ohlc_sane,
    option_trades_sane,
    times_monotonic_and_aligned,
)
from tests.conftest import SHARED_DATA, SYMBOLS


def names_parse(table: pa.Table) -> quality.CheckOutcome:
    """The instrument-name check with Deribit's parser, as the Deribit asset runs it."""
    return instrument_names_parse(table, parse_instrument_name)


BINANCE = SHARED_DATA / "binance"
HYPERLIQUID = SHARED_DATA / "hyperliquid"
DERIBIT_CSV = SHARED_DATA / "deribit" / "quantlet_trades_BTC_options_2022-01-01_00-10UTC.csv"
HOUR, MINUTE, DAY = INTERVAL_MS["1h"], INTERVAL_MS["1m"], INTERVAL_MS["1d"]
HALT_DAY = "2023-03-24"
QUIET_DAY = "2023-03-23"
KEYS = ["symbol", "open_time"]
VOLUMES = ["volume", "quote_volume", "trades", "taker_buy_base_volume", "taker_buy_quote_volume"]


# -- independent helpers -------------------------------------------------------------------


def ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


def moment(ms_: int) -> datetime:
    return datetime.fromtimestamp(ms_ / 1000, UTC)


def minute_label(ms_: int) -> str:
    return moment(ms_).strftime("%Y-%m-%dT%H:%MZ")


def hhmm(ms_: int) -> str:
    return moment(ms_).strftime("%H:%M")


def plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros, e.g. 27100.00000000 -> 27100."""
    return format(value.normalize(), "f")


def runs(missing: list[int], step: int) -> list[tuple[int, int]]:
    """Consecutive runs of the sorted ``missing`` open times."""
    out: list[tuple[int, int]] = []
    for t in missing:
        if out and out[-1][1] + step == t:
            out[-1] = (out[-1][0], t)
        else:
            out.append((t, t))
    return out


def range_text(first: int, last: int) -> str:
    return hhmm(first) if first == last else f"{hhmm(first)}-{hhmm(last)}"


def with_value(table: pa.Table, column: str, index: int, value) -> pa.Table:
    values = table[column].to_pylist()
    values[index] = value
    position = table.schema.get_field_index(column)
    return table.set_column(
        position, table.schema.field(column), pa.array(values, table[column].type)
    )


# -- real data as lake tables --------------------------------------------------------------


@cache
def raw_klines(symbol: str, month: str) -> list[list]:
    return json.loads((BINANCE / f"klines_{symbol}_1h_{month}.json").read_text())


def day_rows(rows: list[list], day: str) -> list[list]:
    return [row for row in rows if ms(day) <= row[0] < ms(day) + DAY]


def kline_table(symbol: str, rows: list[list]) -> pa.Table:
    """Klines as the raw asset writes them: the contract's table plus the symbol column."""
    table = KLINE_CONTRACT.to_table(rows, f"test klines {symbol}")
    symbols = pa.array([symbol] * table.num_rows, pa.string())
    return table.add_column(0, "symbol", symbols).cast(KLINE_LAKE_SCHEMA)


def klines_1h(day: str | None = None, symbols=SYMBOLS) -> pa.Table:
    tables = []
    for symbol in symbols:
        rows = raw_klines(symbol, "2023-03")
        tables.append(kline_table(symbol, day_rows(rows, day) if day else rows))
    return pa.concat_tables(tables)


@cache
def freqtrade_1m_day(symbol: str, day: str) -> tuple[list, ...]:
    """The freqtrade ``[t, o, h, l, c, v]`` rows of one day, as 12-field Binance klines with
    the six fields freqtrade did not keep as null (what the replay serves)."""
    base = symbol.removesuffix("USDT")
    # The 2023 recording (SOURCES.md section 2), which holds the 2023-03-24 halt.
    path = BINANCE / f"freqtrade_{base}_USDT-1m_2023-03-16_to_2023-05-01.json"
    rows = [row for row in json.loads(path.read_text()) if ms(day) <= row[0] < ms(day) + DAY]
    return tuple(
        [row[0], *(f"{Decimal(repr(v)):.8f}" for v in row[1:]), *([None] * 6)] for row in rows
    )


def cassette_body(name: str, kind: str) -> list[dict]:
    for interaction in yaml.safe_load((HYPERLIQUID / name).read_text())["interactions"]:
        if json.loads(interaction["request"]["body"])["type"] == kind:
            return json.loads(interaction["response"]["body"]["string"])
    raise AssertionError(f"no {kind} in {name}")


@cache
def csv_rows() -> tuple[dict, ...]:
    with DERIBIT_CSV.open(newline="") as handle:
        return tuple(csv.DictReader(handle))


def unique_csv_rows() -> list[dict]:
    """One row per trade id, ascending by trade id (= by time, SOURCES.md section 7)."""
    by_id = {row["trade_id"]: row for row in csv_rows()}
    return [by_id[k] for k in sorted(by_id, key=int)]


def trades_table(rows: list[dict]) -> pa.Table:
    """CSV rows as Deribit trade objects (exact decimals), through the trade contract."""
    trades = [
        {
            "trade_seq": int(row["trade_seq"]),
            "trade_id": row["trade_id"],
            "timestamp": int(row["t"]),
            "tick_direction": int(row["tick_direction"]),
            "price": Decimal(row["p"]),
            "iv": Decimal(row["iv"]),
            "instrument_name": row["instrument_name"],
            "index_price": Decimal(row["index_price"]),
            "direction": row["direction"],
            "amount": Decimal(row["q"]),
        }
        for row in rows
    ]
    validated = validate_trades(trades, "test QuantLet 2022-01-01")
    assert validated.rejected == []
    return validated.table


def iv_faulty(row: dict) -> bool:
    return not Decimal(0) <= Decimal(row["iv"]) <= Decimal(1000)


# -- Binance 1h: the real data passes ------------------------------------------------------


def test_real_binance_1h_month_passes_row_checks():
    table = klines_1h()
    recorded = sum(len(raw_klines(s, "2023-03")) for s in SYMBOLS)
    assert table.num_rows == recorded

    dup = no_duplicate_keys(table, KEYS)
    assert (dup.name, dup.passed, dup.failures, dup.examples) == ("no_duplicate_keys", True, 0, [])
    assert dup.metadata["distinct_keys"] == recorded
    assert dup.metadata["surplus_rows"] == 0

    times = times_monotonic_and_aligned(table, "symbol", "open_time", HOUR)
    assert times.passed and times.failures == 0
    assert times.metadata["strict"] is True

    ohlc = ohlc_sane(table)
    assert ohlc.passed and ohlc.failures == 0 and ohlc.metadata["rows"] == recorded

    volumes = non_negative(table, VOLUMES)
    assert volumes.passed and volumes.metadata["nulls"] == dict.fromkeys(VOLUMES, 0)

    json.dumps([dup.metadata, times.metadata, ohlc.metadata, volumes.metadata])


def test_real_binance_1h_full_day_has_every_candle():
    table = klines_1h(QUIET_DAY)
    counts = {s: len(day_rows(raw_klines(s, "2023-03"), QUIET_DAY)) for s in SYMBOLS}
    assert set(counts.values()) == {24}
    outcome = expected_candles(
        table, "symbol", "open_time", SYMBOLS, ms(QUIET_DAY), ms(QUIET_DAY) + DAY, HOUR, None
    )
    assert outcome.passed and outcome.failures == 0
    assert outcome.metadata["expected"] == 24
    assert outcome.metadata["actual"] == counts
    assert outcome.metadata["missing"] == {} and outcome.metadata["known_gaps"] == {}


# -- the 2023-03-24 halt -------------------------------------------------------------------


def halt_ranges_1h() -> dict[str, list[str]]:
    ranges = {}
    for symbol in SYMBOLS:
        opens = {row[0] for row in day_rows(raw_klines(symbol, "2023-03"), HALT_DAY)}
        missing = [t for t in range(ms(HALT_DAY), ms(HALT_DAY) + DAY, HOUR) if t not in opens]
        ranges[symbol] = [range_text(*r) for r in runs(missing, HOUR)]
    return ranges


def test_halt_in_1h_fails_without_known_gaps_and_passes_with_them():
    gaps = halt_ranges_1h()
    # SOURCES.md: the 13:00 hour does not exist on Binance that day, for every symbol.
    assert gaps == {s: ["13:00"] for s in SYMBOLS}
    table = klines_1h(HALT_DAY)
    args = ("symbol", "open_time", SYMBOLS, ms(HALT_DAY), ms(HALT_DAY) + DAY, HOUR)

    unknown = expected_candles(table, *args, None)
    assert not unknown.passed
    assert unknown.failures == len(SYMBOLS)  # one hour per symbol
    assert unknown.metadata["missing"] == gaps
    assert unknown.metadata["known_gaps"] == {}
    assert unknown.metadata["actual"] == dict.fromkeys(SYMBOLS, 23)
    assert unknown.examples == [f"{s} {HALT_DAY}: missing 13:00 (1 candle)" for s in SYMBOLS]

    known = expected_candles(table, *args, gaps)
    assert known.passed and known.failures == 0 and known.examples == []
    assert known.metadata["known_gaps"] == gaps
    assert known.metadata["missing"] == gaps


def test_halt_in_1m_fails_listing_exactly_the_halt_and_passes_when_known():
    tables, gaps, present = [], {}, {}
    for symbol in SYMBOLS:
        rows = freqtrade_1m_day(symbol, HALT_DAY)
        opens = {row[0] for row in rows}
        missing = [t for t in range(ms(HALT_DAY), ms(HALT_DAY) + DAY, MINUTE) if t not in opens]
        gaps[symbol] = [range_text(*r) for r in runs(missing, MINUTE)]
        present[symbol] = len(opens)
        tables.append(kline_table(symbol, list(rows)))
    # SOURCES.md: minute 12:39 is followed directly by 14:00 in all three series.
    assert gaps == {s: ["12:40-13:59"] for s in SYMBOLS}
    table = pa.concat_tables(tables)
    args = ("symbol", "open_time", SYMBOLS, ms(HALT_DAY), ms(HALT_DAY) + DAY, MINUTE)

    unknown = expected_candles(table, *args, None)
    assert not unknown.passed
    assert unknown.failures == sum(1440 - n for n in present.values())
    assert unknown.metadata["expected"] == 1440
    assert unknown.metadata["actual"] == present
    assert unknown.metadata["missing"] == gaps
    assert unknown.metadata["missing_candles"] == unknown.failures
    assert unknown.examples == [
        f"{s} {HALT_DAY}: missing 12:40-13:59 ({1440 - present[s]} candles)" for s in SYMBOLS
    ]

    known = expected_candles(table, *args, gaps)
    assert known.passed and known.failures == 0
    assert known.metadata["known_gaps"] == gaps

    # A known gap only covers exactly its range: a different one is still a failure.
    other = expected_candles(table, *args, {"BTCUSDT": ["12:40-13:58"], "ETHUSDT": gaps["ETHUSDT"]})
    assert other.failures == 2 * (1440 - present["BTCUSDT"])
    assert other.metadata["known_gaps"] == {"ETHUSDT": ["12:40-13:59"]}

    # The 1m recordings legitimately lack quote volume, trades and taker volumes (NULL).
    volumes = non_negative(table, VOLUMES)
    assert volumes.passed
    assert volumes.metadata["nulls"] == {
        "volume": 0,
        **{c: table.num_rows for c in VOLUMES[1:]},
    }
    assert ohlc_sane(table).passed
    assert times_monotonic_and_aligned(table, "symbol", "open_time", MINUTE).passed
    assert no_duplicate_keys(table, KEYS).passed


# -- Binance 1h: each corruption fails with the right count and key ------------------------


@pytest.fixture
def btc_day() -> tuple[pa.Table, list[list]]:
    rows = day_rows(raw_klines("BTCUSDT", "2023-03"), QUIET_DAY)
    return kline_table("BTCUSDT", rows), rows


def test_duplicated_row(btc_day):
    table, rows = btc_day
    corrupted = pa.concat_tables([table, table.slice(5, 1)])
    outcome = no_duplicate_keys(corrupted, KEYS)
    assert not outcome.passed and outcome.failures == 1
    assert outcome.examples == [f"BTCUSDT {minute_label(rows[5][0])}: 2 rows"]
    assert outcome.metadata["surplus_rows"] == 1
    assert outcome.metadata["distinct_keys"] == len(rows)


def test_swapped_times(btc_day):
    table, rows = btc_day
    order = list(range(len(rows)))
    order[7], order[8] = 8, 7
    outcome = times_monotonic_and_aligned(table.take(order), "symbol", "open_time", HOUR)
    assert not outcome.passed and outcome.failures == 1
    assert outcome.metadata["out_of_order"] == 1 and outcome.metadata["misaligned"] == 0
    assert outcome.examples == [
        f"BTCUSDT {minute_label(rows[7][0])} (row 8): not after the previous time "
        f"{minute_label(rows[8][0])}"
    ]


def test_repeated_time_fails_only_when_strict(btc_day):
    table, rows = btc_day
    corrupted = with_value(table, "open_time", 9, moment(rows[8][0]))
    # Row 9 repeats row 8's time (still on the grid); row 10 is after it again.
    assert times_monotonic_and_aligned(corrupted, "symbol", "open_time", HOUR).failures == 1
    strict = times_monotonic_and_aligned(corrupted, "symbol", "open_time", None, strict=True)
    assert strict.failures == 1
    assert times_monotonic_and_aligned(corrupted, "symbol", "open_time", None).passed


def test_time_off_the_interval_grid(btc_day):
    table, rows = btc_day
    shifted = rows[10][0] + 30_000
    corrupted = with_value(table, "open_time", 10, moment(shifted))
    outcome = times_monotonic_and_aligned(corrupted, "symbol", "open_time", HOUR)
    assert not outcome.passed and outcome.failures == 1
    assert outcome.metadata["misaligned"] == 1 and outcome.metadata["out_of_order"] == 0
    label = moment(shifted).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert outcome.examples == [f"BTCUSDT {label} (row 10): not on the 1h grid"]
    # Without an interval (trades) alignment is not checked.
    assert times_monotonic_and_aligned(corrupted, "symbol", "open_time", None).passed
    # expected_candles: the shifted row is unexpected and its hour is missing.
    window = (ms(QUIET_DAY), ms(QUIET_DAY) + DAY, HOUR)
    candles = expected_candles(corrupted, "symbol", "open_time", ["BTCUSDT"], *window)
    assert candles.failures == 2
    assert candles.metadata["missing"] == {"BTCUSDT": [hhmm(rows[10][0])]}
    assert candles.metadata["unexpected_rows"] == 1


def test_high_below_open(btc_day):
    table, rows = btc_day
    open_ = Decimal(rows[3][1])
    high = open_ - 1
    corrupted = with_value(table, "high", 3, high)
    outcome = ohlc_sane(corrupted)
    assert not outcome.passed and outcome.failures == 1
    assert outcome.metadata["high_below_open"] == 1
    (example,) = outcome.examples
    assert example.startswith(f"BTCUSDT {minute_label(rows[3][0])}: ")
    assert f"high {plain(high)} < open {plain(open_)}" in example


def test_zero_price(btc_day):
    table, rows = btc_day
    outcome = ohlc_sane(with_value(table, "close", 6, Decimal(0)))
    assert not outcome.passed and outcome.failures == 1
    assert outcome.metadata["non_positive_price"] == 1
    (example,) = outcome.examples
    assert example.startswith(f"BTCUSDT {minute_label(rows[6][0])}: close 0 <= 0")


def test_null_price_fails(btc_day):
    table, rows = btc_day
    outcome = ohlc_sane(with_value(table, "low", 2, None))
    assert outcome.failures == 1 and outcome.metadata["null_price"] == 1
    assert outcome.examples == [f"BTCUSDT {minute_label(rows[2][0])}: null low"]


def test_negative_volume(btc_day):
    table, rows = btc_day
    volume = Decimal(rows[4][5])
    outcome = non_negative(with_value(table, "volume", 4, -volume), VOLUMES)
    assert not outcome.passed and outcome.failures == 1
    assert outcome.metadata["negative"]["volume"] == 1
    assert outcome.examples == [f"BTCUSDT {minute_label(rows[4][0])}: volume -{plain(volume)} < 0"]


def test_removed_hour(btc_day):
    table, rows = btc_day
    corrupted = pa.concat_tables([table.slice(0, 5), table.slice(6)])
    window = (ms(QUIET_DAY), ms(QUIET_DAY) + DAY, HOUR)
    outcome = expected_candles(corrupted, "symbol", "open_time", ["BTCUSDT"], *window)
    assert not outcome.passed and outcome.failures == 1
    assert outcome.metadata["missing"] == {"BTCUSDT": [hhmm(rows[5][0])]}
    assert outcome.metadata["actual"] == {"BTCUSDT": len(rows) - 1}
    assert outcome.examples == [f"BTCUSDT {QUIET_DAY}: missing {hhmm(rows[5][0])} (1 candle)"]
    # Still strictly increasing: the gap is only visible against the expected grid.
    assert times_monotonic_and_aligned(corrupted, "symbol", "open_time", HOUR).passed


def test_rows_outside_the_window_or_group_are_unexpected(btc_day):
    table, rows = btc_day
    previous_day = kline_table("BTCUSDT", day_rows(raw_klines("BTCUSDT", "2023-03"), "2023-03-22"))
    corrupted = pa.concat_tables([table, previous_day.slice(0, 1)])
    window = (ms(QUIET_DAY), ms(QUIET_DAY) + DAY, HOUR)
    outcome = expected_candles(corrupted, "symbol", "open_time", ["BTCUSDT"], *window)
    assert outcome.failures == 1 and outcome.metadata["unexpected_rows"] == 1
    assert outcome.examples[0].startswith(f"BTCUSDT {minute_label(ms('2023-03-22'))} (row 24)")
    # A symbol nobody asked for is unexpected, one that was asked for but absent is missing.
    missing_eth = expected_candles(table, "symbol", "open_time", ["ETHUSDT"], *window)
    assert missing_eth.failures == 24 + len(rows)
    assert missing_eth.metadata["missing"] == {"ETHUSDT": ["00:00-23:00"]}


# -- Hyperliquid ---------------------------------------------------------------------------


def test_real_hyperliquid_candles_pass():
    body = cassette_body("vcr_meta+candleSnapshot_kPEPE_1h_2023-05-21.yaml", "candleSnapshot")
    table = CANDLE_CONTRACT.to_table(body, "test kPEPE").table
    first = min(candle["t"] for candle in body)
    keys = ["coin", "open_time"]
    assert no_duplicate_keys(table, keys).passed
    assert times_monotonic_and_aligned(table, "coin", "open_time", HOUR).passed
    assert ohlc_sane(table).passed
    assert non_negative(table, ["volume", "trades"]).passed
    outcome = expected_candles(table, "coin", "open_time", ["kPEPE"], first, first + DAY, HOUR)
    assert outcome.passed
    assert outcome.metadata["actual"] == {"kPEPE": len({c["t"] for c in body})} == {"kPEPE": 24}


def test_real_hyperliquid_funding_passes_with_negative_rates_and_jitter():
    body = cassette_body(
        "vcr_meta+fundingHistory_BTC_2023-05-12_to_2023-07-17.yaml", "fundingHistory"
    )
    table = FUNDING_CONTRACT.to_table(body, "test BTC funding").table
    assert any(Decimal(r["fundingRate"]) < 0 for r in body)  # legitimate, never flagged
    assert any(r["time"] % HOUR for r in body)  # millisecond jitter: no interval grid
    assert no_duplicate_keys(table, ["coin", "time"]).passed
    outcome = times_monotonic_and_aligned(table, "coin", "time", None, strict=True)
    assert outcome.passed and outcome.metadata["rows"] == len(body)

    repeated = with_value(table, "time", 100, moment(body[99]["time"]))
    strict = times_monotonic_and_aligned(repeated, "coin", "time", None, strict=True)
    assert strict.failures == 1
    assert strict.examples[0].startswith(f"BTC {moment(body[99]['time']).strftime('%Y-%m-%d')}")
    assert no_duplicate_keys(repeated, ["coin", "time"]).failures == 1


# -- Deribit option trades -----------------------------------------------------------------


@pytest.fixture(scope="module")
def trades() -> pa.Table:
    return trades_table(unique_csv_rows())


def test_real_trades_keys_and_order(trades):
    rows = unique_csv_rows()
    assert trades.num_rows == len(rows) == len({r["trade_id"] for r in csv_rows()})
    assert no_duplicate_keys(trades, ["trade_id"]).passed

    order = times_monotonic_and_aligned(trades, None, "timestamp", None)
    assert order.passed and order.metadata["strict"] is False
    assert times_monotonic_and_aligned(trades, "instrument_name", "timestamp", None).passed
    # Trades within one millisecond share a timestamp: strict order would flag each repeat.
    times = [int(r["t"]) for r in rows]
    repeats = sum(a == b for a, b in pairwise(times))
    assert repeats > 0
    strict = times_monotonic_and_aligned(trades, None, "timestamp", None, strict=True)
    assert strict.failures == repeats
    index = next(i for i in range(1, len(times)) if times[i] == times[i - 1])
    label = moment(times[index]).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    assert strict.examples[0] == (
        f"trade {rows[index]['trade_id']} at {label} (row {index}): not after the previous "
        f"time {label}"
    )

    names = names_parse(trades)
    assert names.passed and names.failures == 0
    assert names.metadata["distinct_names"] == len({r["instrument_name"] for r in rows})

    assert non_negative(trades, ["price", "amount", "index_price", "iv", "mark_price"]).passed


def test_raw_csv_pages_repeat_trades():
    rows = list(csv_rows())
    table = trades_table(rows)
    counts = Counter(r["trade_id"] for r in rows)
    outcome = no_duplicate_keys(table, ["trade_id"])
    assert outcome.failures == sum(1 for n in counts.values() if n > 1)
    assert outcome.metadata["surplus_rows"] == len(rows) - len(counts)
    first = next(r["trade_id"] for r in rows if counts[r["trade_id"]] > 1)
    assert outcome.examples[0] == f"trade {first}: {counts[first]} rows"
    assert len(outcome.examples) == quality.MAX_EXAMPLES


def test_real_trades_sane_including_the_zero_iv_trade(trades):
    rows = unique_csv_rows()
    # The recording has one iv of 0 (an in-the-money put traded below intrinsic value just
    # before expiry: Deribit's own answer, allowed) and its maximum, 500, is inside the range.
    assert [r["iv"] for r in rows if Decimal(r["iv"]) == 0] == ["0"]
    assert max(Decimal(r["iv"]) for r in rows) == 500
    assert not [r for r in rows if iv_faulty(r)]
    outcome = option_trades_sane(trades)
    assert outcome.passed and outcome.failures == 0


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("price", Decimal(0), "price 0 <= 0"),
        ("amount", Decimal(0), "amount 0 <= 0"),
        ("amount", Decimal("-0.1"), "amount -0.1 <= 0"),
        ("iv", -1.0, "iv -1 not in [0, 1000]"),
        ("iv", 5000.0, "iv 5000 not in [0, 1000]"),
        ("iv", float("nan"), "iv nan not in [0, 1000]"),
    ],
)
def test_trade_corruptions(column, value, problem):
    rows = [r for r in unique_csv_rows() if not iv_faulty(r)]
    table = with_value(trades_table(rows), column, 42, value)
    outcome = option_trades_sane(table)
    assert not outcome.passed and outcome.failures == 1
    assert outcome.examples == [
        f"trade {rows[42]['trade_id']} {rows[42]['instrument_name']}: {problem}"
    ]


def test_iv_bounds_null_and_custom_range(trades):
    rows = [r for r in unique_csv_rows() if not iv_faulty(r)]
    table = trades_table(rows)
    assert option_trades_sane(with_value(table, "iv", 0, 1000.0)).passed  # upper inclusive
    assert option_trades_sane(with_value(table, "iv", 0, 0.0)).passed  # lower inclusive
    nulls = with_value(table, "iv", 0, None)
    outcome = option_trades_sane(nulls)
    assert outcome.passed and outcome.metadata["iv_null"] == 1
    narrow = option_trades_sane(table, iv_range=(0, 100))
    assert narrow.failures == sum(1 for r in rows if Decimal(r["iv"]) > 100)


def test_perpetual_name_and_disagreeing_strike(trades):
    rows = unique_csv_rows()
    perpetual = names_parse(with_value(trades, "instrument_name", 3, "BTC-PERPETUAL"))
    assert not perpetual.passed and perpetual.failures == 1
    assert perpetual.metadata["unparseable_names"] == 1
    assert perpetual.examples == [
        f"trade {rows[3]['trade_id']} BTC-PERPETUAL: does not parse (a perpetual, not an option)"
    ]

    name = rows[7]["instrument_name"]
    strike = Decimal(name.split("-")[2])
    wrong = names_parse(with_value(trades, "strike", 7, strike + 1000))
    assert not wrong.passed and wrong.failures == 1
    assert wrong.metadata["mismatched"] == {"expiry": 0, "strike": 1, "option_type": 0}
    assert wrong.examples == [
        f"trade {rows[7]['trade_id']} {name}: strike {plain(strike + 1000)} != {plain(strike)} "
        "from the name"
    ]

    flipped = "P" if name.endswith("-C") else "C"
    other_type = names_parse(with_value(trades, "option_type", 7, flipped))
    assert other_type.failures == 1 and other_type.metadata["mismatched"]["option_type"] == 1


# -- empty tables and merge ----------------------------------------------------------------


def test_empty_tables_pass_but_have_no_candles():
    empty = KLINE_LAKE_SCHEMA.empty_table()
    assert no_duplicate_keys(empty, KEYS).passed
    assert times_monotonic_and_aligned(empty, "symbol", "open_time", HOUR).passed
    assert ohlc_sane(empty).passed
    assert non_negative(empty, VOLUMES).passed
    window = (ms(QUIET_DAY), ms(QUIET_DAY) + DAY, HOUR)
    candles = expected_candles(empty, "symbol", "open_time", ["BTCUSDT"], *window)
    assert candles.failures == 24 and candles.metadata["missing"] == {"BTCUSDT": ["00:00-23:00"]}
    no_trades = OPTION_TRADE_LAKE_SCHEMA.empty_table()
    assert option_trades_sane(no_trades).passed
    assert names_parse(no_trades).passed


def test_merge_partitions():
    window = {day: (ms(day), ms(day) + DAY, HOUR) for day in (QUIET_DAY, HALT_DAY)}
    outcomes = {
        day: expected_candles(klines_1h(day), "symbol", "open_time", SYMBOLS, *window[day])
        for day in window
    }
    merged = merge("expected_candles", outcomes)
    assert not merged.passed and merged.failures == len(SYMBOLS)
    assert merged.examples == [f"{HALT_DAY}: {e}" for e in outcomes[HALT_DAY].examples]
    assert merged.metadata["partitions"] == 2
    assert merged.metadata["failed_partitions"] == [HALT_DAY]
    assert merged.metadata["per_partition"][QUIET_DAY]["passed"] is True
    assert merged.metadata["per_partition"][HALT_DAY]["metadata"]["missing"] == halt_ranges_1h()
    json.dumps(merged.metadata)

    many = merge("x", [CheckOutcome("x", False, 3, [f"p{i}" for i in range(8)], {})] * 2)
    assert many.failures == 6 and len(many.examples) == quality.MAX_EXAMPLES
    assert many.examples[:2] == ["p0", "p1"]
    assert merge("x", {}).passed
    with pytest.raises(ValueError, match="no_duplicate_keys"):
        merge("x", {"2023-03-24": no_duplicate_keys(klines_1h(HALT_DAY), KEYS)})
