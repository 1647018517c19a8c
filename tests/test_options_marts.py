"""The hourly option marts against an independent computation from Deribit's real trades.

The lake is built here, from the recorded QuantLet CSV of real BTC option trades of
2022-01-01 00:00-10:29 UTC (shared/data SOURCES.md section 7): deduplicated on trade_id,
instrument names parsed with this module's own regex, written as the Parquet lake contract
says (mark_price null: the CSV has none). dbt then builds the marts in two incremental
windows, and every row is compared with a computation written here from the definitions in
dbt_project/models/marts/options/_options__models.yml: exact for DECIMAL columns, to 1e-9
relative for DOUBLE ones. Nothing expected is read back from dbt.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import SHARED_DATA, compiled_sql, files_read

pytestmark = pytest.mark.slow

CSV_PATH = SHARED_DATA / "deribit" / "quantlet_trades_BTC_options_2022-01-01_00-10UTC.csv"
DBT = Path(sys.executable).parent / "dbt"
PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
SELECT = "+tag:options_hourly"
CENT = Decimal("1e-8")  # USD amounts are rounded half away from zero to 8 decimals
EXPIRY_1JAN22 = datetime(2022, 1, 1, 8, tzinfo=UTC)

# The lake contract of raw/deribit/option_trades (column order matters).
LAKE_SCHEMA = pa.schema(
    [
        ("trade_id", pa.string()),
        ("trade_seq", pa.int64()),
        ("timestamp", pa.timestamp("ms", tz="UTC")),
        ("instrument_name", pa.string()),
        ("direction", pa.string()),
        ("price", pa.decimal128(38, 8)),
        ("amount", pa.decimal128(38, 8)),
        ("iv", pa.float64()),
        ("mark_price", pa.float64()),
        ("index_price", pa.decimal128(38, 8)),
        ("tick_direction", pa.int32()),
        ("expiry", pa.timestamp("ms", tz="UTC")),
        ("strike", pa.decimal128(38, 8)),
        ("option_type", pa.string()),
    ]
)

INSTRUMENT = re.compile(r"^BTC-(\d{1,2})([A-Z]{3})(\d{2})-(\d+)-([CP])$")
MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
MONTHS = {name: number for number, name in enumerate(MONTH_NAMES, 1)}


@dataclass(frozen=True)
class Trade:
    trade_id: str
    trade_seq: int
    ts_ms: int
    instrument_name: str
    direction: str
    price: Decimal
    amount: Decimal
    iv: float
    index_price: Decimal
    tick_direction: int
    expiry: datetime
    strike: Decimal
    option_type: str

    @property
    def hour(self) -> datetime:
        return datetime.fromtimestamp(self.ts_ms // 3_600_000 * 3600, UTC)

    @property
    def order(self) -> tuple[int, int]:
        """An instrument's trade order: (timestamp, trade_seq)."""
        return (self.ts_ms, self.trade_seq)


def parse_instrument(name: str) -> tuple[datetime, Decimal, str]:
    """(expiry at 08:00 UTC, strike, 'C'/'P') of a Deribit option name like BTC-7JAN22-40000-P."""
    match = INSTRUMENT.match(name)
    assert match, name
    day, month, year, strike, option_type = match.groups()
    expiry = datetime(2000 + int(year), MONTHS[month], int(day), 8, tzinfo=UTC)
    return expiry, Decimal(strike), option_type


def recorded_trades() -> list[Trade]:
    """The CSV's unique trades (first copy of each trade_id), in file order."""
    by_id: dict[str, dict] = {}
    copies = 0
    with CSV_PATH.open(newline="") as f:
        for row in csv.DictReader(f):
            copies += 1
            first = by_id.setdefault(row["trade_id"], row)
            assert first == row, f"copies of trade {row['trade_id']} disagree"
    assert (copies, len(by_id)) == (3719, 1350)  # SOURCES.md section 7
    trades = []
    for r in by_id.values():
        expiry, strike, option_type = parse_instrument(r["instrument_name"])
        trades.append(
            Trade(
                trade_id=r["trade_id"],
                trade_seq=int(r["trade_seq"]),
                ts_ms=int(r["t"]),
                instrument_name=r["instrument_name"],
                direction=r["direction"],
                price=Decimal(r["p"]),
                amount=Decimal(r["q"]),
                iv=float(r["iv"]),
                index_price=Decimal(r["index_price"]),
                tick_direction=int(r["tick_direction"]),
                expiry=expiry,
                strike=strike,
                option_type=option_type,
            )
        )
    return trades


def write_partition(data_dir: Path, day: str, trades: list[Trade]) -> None:
    path = data_dir / "lake" / "raw" / "deribit" / "option_trades" / f"date={day}" / "part.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {
        "trade_id": [t.trade_id for t in trades],
        "trade_seq": [t.trade_seq for t in trades],
        "timestamp": [t.ts_ms for t in trades],
        "instrument_name": [t.instrument_name for t in trades],
        "direction": [t.direction for t in trades],
        "price": [t.price for t in trades],
        "amount": [t.amount for t in trades],
        "iv": [t.iv for t in trades],
        "mark_price": [None] * len(trades),
        "index_price": [t.index_price for t in trades],
        "tick_direction": [t.tick_direction for t in trades],
        "expiry": [int(t.expiry.timestamp() * 1000) for t in trades],
        "strike": [t.strike for t in trades],
        "option_type": [t.option_type for t in trades],
    }
    arrays = [pa.array(columns[f.name], type=f.type) for f in LAKE_SCHEMA]
    pq.write_table(pa.Table.from_arrays(arrays, schema=LAKE_SCHEMA), path)


def dbt(data_dir: Path, *args: str, hour_min: str | None = None, hour_max: str | None = None):
    """Run dbt on the project with MKT_DATA_DIR = data_dir and target/logs under data_dir."""
    variables = json.dumps({"options_hour_min": hour_min, "options_hour_max": hour_max})
    command = [
        str(DBT),
        *args,
        "--project-dir",
        str(PROJECT_DIR),
        "--profiles-dir",
        str(PROJECT_DIR),
        "--target-path",
        str(data_dir / "dbt_target"),
        "--log-path",
        str(data_dir / "dbt_logs"),
        "--vars",
        variables,
    ]
    env = {**os.environ, "MKT_DATA_DIR": str(data_dir)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    return done


def query(data_dir: Path, sql: str) -> list[dict]:
    from mkt_platform.warehouse import set_lake_variable

    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        set_lake_variable(con)  # compiled staging SQL reads the lake's root from it
        cursor = con.execute(sql)
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9)


def usd(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def hours_to_expiry(hour: datetime, expiry: datetime) -> int:
    return max(1, math.ceil((expiry - hour) / timedelta(hours=1)))


# ---------------------------------------------------------------- independent computation


def expected_ohlc(trades: list[Trade]) -> dict[tuple[datetime, str], dict]:
    groups: dict[tuple[datetime, str], list[Trade]] = defaultdict(list)
    for t in trades:
        groups[(t.hour, t.instrument_name)].append(t)
    out = {}
    for (hour, name), group in groups.items():
        group.sort(key=lambda t: t.order)
        first, last = group[0], group[-1]
        usd_prices = [usd(t.price * t.index_price) for t in group]
        with_iv = [t for t in group if t.iv is not None]
        volume = sum(t.amount for t in group)
        strike, index = first.strike, first.index_price
        moneyness = index - strike if first.option_type == "C" else strike - index
        out[(hour, name)] = {
            "expiry": first.expiry,
            "strike": strike,
            "option_type": first.option_type,
            "open": first.price,
            "high": max(t.price for t in group),
            "low": min(t.price for t in group),
            "close": last.price,
            "open_usd": usd_prices[0],
            "high_usd": max(usd_prices),
            "low_usd": min(usd_prices),
            "close_usd": usd_prices[-1],
            "iv_open": with_iv[0].iv,
            "iv_high": max(t.iv for t in with_iv),
            "iv_low": min(t.iv for t in with_iv),
            "iv_close": with_iv[-1].iv,
            "vwap": float(sum(t.price * t.amount for t in group) / volume),
            "volume": volume,
            "volume_usd": usd(sum(t.amount * t.index_price for t in group)),
            "premium_usd": usd(sum(t.price * t.amount * t.index_price for t in group)),
            "trades": len(group),
            "index_price": index,
            "distance": float(moneyness / index * 100),
            "hours_to_expiry": hours_to_expiry(hour, first.expiry),
        }
    return out


def by_expiry_hour(trades: list[Trade]) -> dict[tuple[datetime, datetime], list[Trade]]:
    groups: dict[tuple[datetime, datetime], list[Trade]] = defaultdict(list)
    for t in trades:
        groups[(t.hour, t.expiry)].append(t)
    for group in groups.values():
        # the first trade of an expiry: by (timestamp, trade_seq, instrument_name)
        group.sort(key=lambda t: (t.ts_ms, t.trade_seq, t.instrument_name))
    return groups


def expected_expiry(trades: list[Trade]) -> dict[tuple[datetime, datetime], dict]:
    out = {}
    for (hour, expiry), group in by_expiry_hour(trades).items():
        calls = sum((t.amount for t in group if t.option_type == "C"), Decimal(0))
        puts = sum((t.amount for t in group if t.option_type == "P"), Decimal(0))
        with_iv = [t for t in group if t.iv is not None and t.iv > 0]
        iv_volume = sum(float(t.amount) for t in with_iv)
        out[(hour, expiry)] = {
            "hours_to_expiry": hours_to_expiry(hour, expiry),
            "call_volume": calls,
            "put_volume": puts,
            "volume": calls + puts,
            "put_call_ratio": float(puts / calls) if calls else None,
            "premium_usd": usd(sum(t.price * t.amount * t.index_price for t in group)),
            "trades": len(group),
            "iv_volume_weighted": (
                sum(t.iv * float(t.amount) for t in with_iv) / iv_volume if iv_volume else None
            ),
            "strikes_traded": len({t.strike for t in group}),
            "instruments_traded": len({t.instrument_name for t in group}),
            "index_price": group[0].index_price,
        }
    return out


def expected_atm(trades: list[Trade]) -> dict[tuple[datetime, datetime], dict]:
    """The documented ATM method, step by step (see option_atm_iv_hourly.sql)."""
    out = {}
    for (hour, expiry), group in by_expiry_hour(trades).items():
        spot = group[0].index_price
        at_strike: dict[Decimal, list[Trade]] = defaultdict(list)
        for t in group:
            if t.iv is not None and t.iv > 0 and t.amount > 0:
                at_strike[t.strike].append(t)
        strike_iv = {
            k: sum(t.iv * float(t.amount) for t in ts) / sum(float(t.amount) for t in ts)
            for k, ts in at_strike.items()
        }
        below = [k for k in strike_iv if k < spot]
        above = [k for k in strike_iv if k >= spot]
        lower = max(below) if below else None
        upper = min(above) if above else None
        if lower is not None and upper is not None:
            method = "interpolated"
            weight = math.log(float(spot) / float(lower)) / math.log(float(upper) / float(lower))
            atm = strike_iv[lower] + (strike_iv[upper] - strike_iv[lower]) * weight
            count = len(at_strike[lower]) + len(at_strike[upper])
        else:
            only = lower if lower is not None else upper
            if only is not None and abs(only - spot) <= Decimal("0.05") * spot:
                method, atm, count = "nearest", strike_iv[only], len(at_strike[only])
            else:
                method, atm, count = "none", None, 0
        out[(hour, expiry)] = {
            "hours_to_expiry": hours_to_expiry(hour, expiry),
            "index_price": spot,
            "atm_iv": atm,
            "method": method,
            "lower_strike": lower,
            "lower_iv": strike_iv.get(lower),
            "upper_strike": upper,
            "upper_iv": strike_iv.get(upper),
            "trades": count,
        }
    return out


def assert_rows_match(actual: dict, expected: dict, where: str) -> None:
    for column, want in expected.items():
        got = actual[column]
        if isinstance(want, float) or (want is None and isinstance(got, float)):
            assert close(got, want), f"{where} {column}: {got!r} != {want!r}"
        else:
            assert got == want, f"{where} {column}: {got!r} != {want!r}"


# ---------------------------------------------------------------- fixtures and tests


@pytest.fixture(scope="module")
def trades() -> list[Trade]:
    return recorded_trades()


@pytest.fixture(scope="module")
def built(trades: list[Trade], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake of the recorded day, marts built in two incremental windows: [00:00, 08:00)
    first, then [08:00, open end), so each window's filter and the delete+insert are used."""
    data_dir = tmp_path_factory.mktemp("options") / "data"
    write_partition(data_dir, "2022-01-01", trades)
    dbt(data_dir, "build", "--select", SELECT, hour_max="2022-01-01T08:00:00+00:00")
    hours = {
        r["hour"] for r in query(data_dir, "select distinct hour from marts.option_ohlc_hourly")
    }
    assert hours == {datetime(2022, 1, 1, h, tzinfo=UTC) for h in range(8)}
    dbt(data_dir, "build", "--select", SELECT, hour_min="2022-01-01T08:00:00+00:00")
    return data_dir


def test_ohlc_hourly_equals_independent_computation(built: Path, trades: list[Trade]):
    """Every (hour, instrument) of 00:00-10:00: OHLC by (timestamp, trade_seq) including
    same-millisecond trades, USD OHLC, iv OHLC, vwap, volume, counts, distance, hours."""
    expected = expected_ohlc(trades)
    rows = query(built, "select * from marts.option_ohlc_hourly")
    actual = {(r["hour"], r["instrument"]): r for r in rows}
    assert len(rows) == len(actual)
    assert set(actual) == set(expected)
    hours = {hour for hour, _ in expected}
    assert hours == {datetime(2022, 1, 1, h, tzinfo=UTC) for h in range(11)}
    for key, want in expected.items():
        assert_rows_match(actual[key], want, f"{key[0]:%H:%M} {key[1]}")
        # the CSV has no mark price: every mark_* is null, not 0 or a shifted value
        assert [actual[key][c] for c in ("mark_open", "mark_high", "mark_low", "mark_close")] == [
            None
        ] * 4
    assert sum(r["trades"] for r in rows) == len(trades) == 1350


def test_same_millisecond_trades_exist_and_are_ordered_by_trade_seq(built, trades):
    """The recorded day has trades of one instrument sharing a millisecond; where they open
    or close an hour at different prices, the mart takes the lowest/highest trade_seq."""
    groups: dict[tuple[datetime, str], list[Trade]] = defaultdict(list)
    for t in trades:
        groups[(t.hour, t.instrument_name)].append(t)
    decided_by_seq = []
    for key, group in groups.items():
        first_ms = min(t.ts_ms for t in group)
        tied = sorted((t for t in group if t.ts_ms == first_ms), key=lambda t: t.trade_seq)
        if len({t.price for t in tied}) > 1:
            decided_by_seq.append((key, tied[0].price))
    assert decided_by_seq, "the recorded day should hold a same-millisecond open"
    rows = {
        (r["hour"], r["instrument"]): r["open"]
        for r in query(built, "select hour, instrument, open from marts.option_ohlc_hourly")
    }
    for key, price in decided_by_seq:
        assert rows[key] == price, key


def test_hours_around_the_1jan22_expiry(built, trades):
    """1JAN22 options expire at 08:00 UTC: their last trade is before 08:00, the 07:00 hour
    has hours_to_expiry 1, and no 1JAN22 row exists at 08:00 or later."""
    last_1jan = max(t.ts_ms for t in trades if t.expiry == EXPIRY_1JAN22)
    assert datetime.fromtimestamp(last_1jan / 1000, UTC) < EXPIRY_1JAN22
    rows = query(
        built,
        "select hour, instrument, expiry, hours_to_expiry from marts.option_ohlc_hourly "
        "where hour between timestamptz '2022-01-01 07:00:00+00' and timestamptz '2022-01-01 08:00:00+00'",
    )
    at_7 = [r for r in rows if r["hour"] == datetime(2022, 1, 1, 7, tzinfo=UTC)]
    at_8 = [r for r in rows if r["hour"] == datetime(2022, 1, 1, 8, tzinfo=UTC)]
    expiring = [r for r in at_7 if r["instrument"].startswith("BTC-1JAN22-")]
    assert expiring and all(r["hours_to_expiry"] == 1 for r in expiring)
    assert at_8, "other expiries trade in the 08:00 hour"
    assert not [r for r in at_8 if r["expiry"] == EXPIRY_1JAN22]
    later = query(
        built,
        "select count(*) as n from marts.option_ohlc_hourly where expiry = timestamptz "
        "'2022-01-01 08:00:00+00' and hour >= timestamptz '2022-01-01 08:00:00+00'",
    )
    assert later == [{"n": 0}]
    # the next day's expiry counts 24 hours from the 08:00 hour
    assert {r["hours_to_expiry"] for r in at_8 if r["instrument"].startswith("BTC-2JAN22-")} == {24}


def test_expiry_hourly_equals_independent_computation(built, trades):
    expected = expected_expiry(trades)
    rows = query(built, "select * from marts.option_expiry_hourly")
    actual = {(r["hour"], r["expiry"]): r for r in rows}
    assert len(rows) == len(actual)
    assert set(actual) == set(expected)
    ratios = [v["put_call_ratio"] for v in expected.values()]
    assert None in ratios and any(r is not None for r in ratios)  # both cases are checked
    for key, want in expected.items():
        assert_rows_match(actual[key], want, f"{key[0]:%H:%M} {key[1]:%d%b%y}")
    total = sum((r["call_volume"] + r["put_volume"] for r in rows), Decimal(0))
    assert total == sum(t.amount for t in trades)  # 2313.4 BTC per SOURCES.md
    assert total == Decimal("2313.4")


def test_atm_iv_hourly_equals_the_documented_method(built, trades):
    """The ATM iv of every (hour, expiry) equals this test's own run of the documented
    method; the 05:00 hour (the busiest but one) is checked expiry by expiry to be mostly
    interpolated, so the comparison is not vacuous."""
    expected = expected_atm(trades)
    rows = query(built, "select * from marts.option_atm_iv_hourly")
    actual = {(r["hour"], r["expiry"]): r for r in rows}
    assert len(rows) == len(actual)
    assert set(actual) == set(expected)
    for key, want in expected.items():
        assert_rows_match(actual[key], want, f"{key[0]:%H:%M} {key[1]:%d%b%y}")
    five = {k: v for k, v in expected.items() if k[0] == datetime(2022, 1, 1, 5, tzinfo=UTC)}
    interpolated = [v for v in five.values() if v["method"] == "interpolated"]
    assert len(interpolated) >= len(five) // 2 > 0
    for v in interpolated:
        low, high = sorted((v["lower_iv"], v["upper_iv"]))
        assert low <= v["atm_iv"] <= high
        assert v["lower_strike"] < v["index_price"] <= v["upper_strike"]
    assert {v["method"] for v in expected.values()} >= {"interpolated", "nearest", "none"}


def test_staging_is_empty_not_an_error_without_lake_files(tmp_path: Path):
    """Before the first Deribit pull there is no lake file: staging and the marts build
    empty (an empty glob would otherwise fail read_parquet)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    assert not (data_dir / "lake").exists()
    dbt(data_dir, "build", "--select", SELECT)
    counts = query(
        data_dir,
        "select (select count(*) from staging.stg_deribit__option_trades) as staging, "
        "(select count(*) from marts.option_ohlc_hourly) as ohlc, "
        "(select count(*) from marts.option_expiry_hourly) as expiry, "
        "(select count(*) from marts.option_atm_iv_hourly) as atm, "
        "(select count(*) from marts.option_greeks) as greeks, "
        "(select count(*) from marts.option_flow_hourly) as flow",
    )
    assert counts == [{"staging": 0, "ohlc": 0, "expiry": 0, "atm": 0, "greeks": 0, "flow": 0}]
    columns = query(
        data_dir,
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'staging' and table_name = 'stg_deribit__option_trades' "
        "order by ordinal_position",
    )
    assert [(c["column_name"], c["data_type"]) for c in columns] == [
        ("trade_id", "VARCHAR"),
        ("trade_seq", "BIGINT"),
        ("timestamp", "TIMESTAMP WITH TIME ZONE"),
        ("instrument_name", "VARCHAR"),
        ("direction", "VARCHAR"),
        ("price", "DECIMAL(38,8)"),
        ("amount", "DECIMAL(38,8)"),
        ("iv", "DOUBLE"),
        ("mark_price", "DOUBLE"),
        ("index_price", "DECIMAL(38,8)"),
        ("tick_direction", "INTEGER"),
        ("expiry", "TIMESTAMP WITH TIME ZONE"),
        ("strike", "DECIMAL(38,8)"),
        ("option_type", "VARCHAR"),
        ("block_trade_id", "VARCHAR"),
        ("liquidation", "VARCHAR"),
        ("hour", "TIMESTAMP WITH TIME ZONE"),
        ("partition_date", "DATE"),
    ]


def test_staging_dedupes_trades_across_partition_files(tmp_path: Path, trades: list[Trade]):
    """A trade written to a second partition file (a faulty pull) appears once in staging,
    and the copy in its own UTC date's file wins. A trade found only in wrong partitions is
    kept once, from the newest. DECOY copies below carry a doubled price so the winner shows."""
    data_dir = tmp_path / "data"
    copied, orphan = trades[:3], trades[3]
    decoys = [replace(t, price=t.price * 2) for t in copied]
    write_partition(data_dir, "2022-01-01", [t for t in trades if t is not orphan])
    write_partition(data_dir, "2021-12-31", [*decoys, replace(orphan, price=Decimal(1))])
    write_partition(data_dir, "2022-01-02", [*decoys[:2], replace(orphan, price=Decimal(2))])
    dbt(data_dir, "build", "--select", "stg_deribit__option_trades")
    rows = query(
        data_dir, "select trade_id, price, partition_date from staging.stg_deribit__option_trades"
    )
    assert len(rows) == len({r["trade_id"] for r in rows}) == 1350
    price = {r["trade_id"]: (r["price"], r["partition_date"].isoformat()) for r in rows}
    for t in copied:
        assert price[t.trade_id] == (t.price, "2022-01-01")
    assert price[orphan.trade_id] == (Decimal(2), "2022-01-02")


def test_a_one_day_build_reads_only_that_days_lake_file(tmp_path: Path, trades: list[Trade]):
    """With the window of one UTC day, the staging model's SQL opens that day's file only
    (hive partition pruning before the dedupe), however many days the lake holds, and still
    dedupes within it; with no window it reads them all. The staging table keeps the
    history: the one-day build replaces that day's trades and leaves the other days'."""
    data_dir = tmp_path / "data"
    write_partition(data_dir, "2022-01-01", trades)
    others = ("2021-12-30", "2021-12-31", "2022-01-02", "2022-01-03")
    for day in others:
        write_partition(
            data_dir, day, [replace(t, trade_id=f"{day}-{t.trade_id}") for t in trades[:5]]
        )
    target = data_dir / "dbt_target"
    dbt(data_dir, "build", "--select", "stg_deribit__option_trades")
    whole_sql = compiled_sql(target, "stg_deribit__option_trades")
    assert files_read(data_dir / "warehouse.duckdb", whole_sql) == {5}
    dbt(
        data_dir,
        "build",
        "--select",
        "stg_deribit__option_trades",
        hour_min="2022-01-01T00:00:00+00:00",
        hour_max="2022-01-02T00:00:00+00:00",
    )
    window_sql = compiled_sql(target, "stg_deribit__option_trades")
    assert files_read(data_dir / "warehouse.duckdb", window_sql) == {1}
    rows = query(data_dir, f"select trade_id, partition_date from ({window_sql})")
    assert len(rows) == len({r["trade_id"] for r in rows}) == len({t.trade_id for t in trades})
    assert {r["partition_date"].isoformat() for r in rows} == {"2022-01-01"}
    kept = query(
        data_dir,
        "select partition_date, count(*) as n from staging.stg_deribit__option_trades "
        "group by all order by 1",
    )
    by_day = {r["partition_date"].isoformat(): r["n"] for r in kept}
    assert by_day == {**dict.fromkeys(others, 5), "2022-01-01": len(rows)}


def test_a_re_pull_that_withdraws_trades_takes_them_out_of_staging_and_the_marts(
    tmp_path: Path, trades: list[Trade]
):
    """The recorded day built over its UTC-day window, then its file written again without
    the trades from 06:00 on (what a re-pull after the exchange withdrew them gives) and the
    same window built again: staging holds only the trades kept, and the hourly marts only
    the hours and instruments they make, each equal to the independent computation; hours
    06:00-10:00 are gone, not left as they were."""
    data_dir = tmp_path / "data"
    day = {"hour_min": "2022-01-01T00:00:00+00:00", "hour_max": "2022-01-02T00:00:00+00:00"}
    write_partition(data_dir, "2022-01-01", trades)
    dbt(data_dir, "run", "--select", SELECT, **day)
    cutoff = int(datetime(2022, 1, 1, 6, tzinfo=UTC).timestamp() * 1000)
    kept = [t for t in trades if t.ts_ms < cutoff]
    assert 0 < len(kept) < len(trades)
    write_partition(data_dir, "2022-01-01", kept)
    dbt(data_dir, "run", "--select", SELECT, **day)

    staged = query(data_dir, "select trade_id from staging.stg_deribit__option_trades")
    assert sorted(r["trade_id"] for r in staged) == sorted(t.trade_id for t in kept)
    expected = expected_ohlc(kept)
    rows = query(data_dir, "select * from marts.option_ohlc_hourly")
    actual = {(r["hour"], r["instrument"]): r for r in rows}
    assert len(rows) == len(actual) and set(actual) == set(expected)
    for key, want in expected.items():
        assert_rows_match(actual[key], want, f"{key[0]:%H:%M} {key[1]}")
    for mart in ("option_expiry_hourly", "option_atm_iv_hourly", "option_greeks"):
        hours = {r["hour"] for r in query(data_dir, f"select distinct hour from marts.{mart}")}
        assert hours == {datetime(2022, 1, 1, h, tzinfo=UTC) for h in range(6)}, mart


def inverse_option_price(
    is_call: bool, forward: float, strike: float, t: float, sigma: float
) -> float:
    """Deribit's price of an inverse option in BTC: Black-76 (r = 0) over the forward, with
    N(x) from ``math.erfc`` (not the SQL's approximation)."""

    def n(x: float) -> float:
        return 0.5 * math.erfc(-x / math.sqrt(2))

    d1 = (math.log(forward / strike) + sigma * sigma * t / 2) / (sigma * math.sqrt(t))
    d2 = d1 - sigma * math.sqrt(t)
    if is_call:
        return (forward * n(d1) - strike * n(d2)) / forward
    return (strike * n(-d2) - forward * n(-d1)) / forward


def test_the_forward_comes_from_the_trades_ivs_else_parity_else_the_index(tmp_path: Path):
    """SYNTHETIC trades of one hour, each expiry built for one rule: a call priced as Deribit
    prices it on a forward of 52,000 (index 50,000) gives that forward back from its price
    and iv, to the 8 decimals the price is stored with ('trade_iv'); a call and a put of one strike without iv give K / (1 - (C - P))
    ('put_call_parity'); a lone trade without iv keeps the index ('index')."""
    hour = datetime(2022, 1, 7, 10, tzinfo=UTC)
    at = int(hour.timestamp() * 1000) + 60_000
    expiry = datetime(2022, 2, 25, 8, tzinfo=UTC)
    t = (expiry.timestamp() * 1000 - at) / 31_536_000_000
    price = inverse_option_price(True, 52_000, 55_000, t, 0.7)

    def trade(n: int, name: str, price: Decimal, iv: float | None, kind: str) -> Trade:
        expires, strike, _ = parse_instrument(name)
        return Trade(str(n), n, at + n, name, "buy", price, Decimal(1), iv, Decimal(50_000),
                     0, expires, strike, kind)  # fmt: skip

    trades = [
        trade(1, "BTC-25FEB22-55000-C", Decimal(price).quantize(Decimal("1e-8")), 70.0, "C"),
        trade(2, "BTC-28JAN22-50000-C", Decimal("0.05"), None, "C"),
        trade(3, "BTC-28JAN22-50000-P", Decimal("0.03"), None, "P"),
        trade(4, "BTC-14JAN22-45000-P", Decimal("0.01"), None, "P"),
    ]
    data_dir = tmp_path / "data"
    write_partition(data_dir, "2022-01-07", trades)
    dbt(data_dir, "run", "--select", "+option_greeks")
    rows = {
        r["trade_id"]: r
        for r in query(data_dir, "select * from marts.option_greeks order by trade_id")
    }
    assert rows["1"]["forward_source"] == "trade_iv"
    # its price is stored to 8 decimals of BTC: the forward comes back to 1e-7
    assert math.isclose(rows["1"]["forward_price"], 52_000, rel_tol=1e-7)
    for n in ("2", "3"):
        assert rows[n]["forward_source"] == "put_call_parity"
        assert math.isclose(rows[n]["forward_price"], 50_000 / (1 - 0.02), rel_tol=1e-12)
        assert rows[n]["delta"] is None  # no iv, no greeks
    assert rows["4"]["forward_source"] == "index"
    assert rows["4"]["forward_price"] == 50_000


def test_platform_path_replay_to_marts_equals_independent_computation(
    data_dir: Path, instance, trades: list[Trade]
):
    """The whole platform path for 2022-01-01: the replay serves the recorded day, the raw
    asset pages it into the lake, Dagster runs the options dbt assets; every mart row equals
    the computation above from the deduplicated CSV, and the materialization's row counts
    equal the table's."""
    from datetime import date

    from tests.conftest import materialize_days

    # the Deribit trades and what is built from them (as `--only`): the other venues' pulls
    # and the session marts have nothing to do with these marts
    results = materialize_days(
        date(2022, 1, 1), date(2022, 1, 1), instance, only=("deribit_option_trades",)
    )
    assert [r.step.label for r in results] == ["raw pulls", "dbt options and funding"]
    assert all(r.success for r in results)
    rows = query(data_dir, "select * from marts.option_ohlc_hourly")
    actual = {(r["hour"], r["instrument"]): r for r in rows}
    expected = expected_ohlc(trades)
    assert set(actual) == set(expected) and len(rows) == len(expected)
    for key, want in expected.items():
        assert_rows_match(actual[key], want, f"{key[0]:%H:%M} {key[1]}")
    expiry = {
        (r["hour"], r["expiry"]): r
        for r in query(data_dir, "select * from marts.option_expiry_hourly")
    }
    for key, want in expected_expiry(trades).items():
        assert_rows_match(expiry[key], want, f"{key}")
    # The mart's materialization carries the table's rows and its own UTC day's (by the
    # ``hour`` column), as DuckDB counts them (the window below the table: tests/test_dbt.py).
    import dagster as dg

    (record,) = instance.fetch_materializations(dg.AssetKey("option_ohlc_hourly"), limit=1).records
    metadata = record.asset_materialization.metadata
    assert record.partition_key == "2022-01-01"
    assert metadata["dagster/row_count"].value == len(rows) > 0
    assert metadata["dagster/partition_row_count"].value == len(rows)


def test_contracts_make_not_null_columns_not_null_and_old_tables_get_the_constraint(
    built: Path, tmp_path: Path
):
    """Each options mart's enforced contract makes the columns it constrains not_null NOT
    NULL in the warehouse, so a NULL there is refused before anything is written (the
    constraint replaced the column's not_null test). A table built before its contract gets
    the constraint at the next dbt command (on-run-start, macros/contracts.sql), an empty one
    is made again from its contract, and one already holding a NULL there fails that command
    with a message naming the table and the column, its rows untouched, until a full refresh
    makes it again."""
    data_dir = tmp_path / "data"
    shutil.copytree(built, data_dir)
    warehouse = data_dir / "warehouse.duckdb"
    manifest = json.loads((data_dir / "dbt_target" / "manifest.json").read_text())
    declared = {
        (node["name"], column["name"])
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["name"].startswith("option_")
        for column in node["columns"].values()
        if any(c["type"] == "not_null" for c in column["constraints"])
    }
    not_null = {
        (r["table_name"], r["column_name"])
        for r in query(
            data_dir,
            "select table_name, column_name from information_schema.columns "
            "where table_schema = 'marts' and table_name like 'option%' and is_nullable = 'NO'",
        )
    }
    assert len(declared) > 40
    assert not_null == declared
    ohlc = "marts.option_ohlc_hourly"
    with duckdb.connect(str(warehouse)) as con:
        with pytest.raises(duckdb.ConstraintException, match=r"option_ohlc_hourly\.instrument"):
            con.execute(f"insert into {ohlc} select * replace (null as instrument) from {ohlc}")
        rows = con.execute(f"select count(*) from {ohlc}").fetchone()
        con.execute(f"alter table {ohlc} alter column index_price drop not null")
        # an empty table is made again from its contract (DuckLake cannot alter one)
        con.execute("delete from marts.option_term_structure_hourly")
        con.execute("alter table marts.option_term_structure_hourly alter hour drop not null")

    one_hour = {"hour_min": "2022-01-01T05:00:00+00:00", "hour_max": "2022-01-01T06:00:00+00:00"}
    both = ("option_ohlc_hourly", "option_term_structure_hourly")
    done = dbt(data_dir, "run", "--select", *both, **one_hour)
    assert "NOT NULL constraint to marts.option_ohlc_hourly.index_price" in done.stdout
    assert "the empty table marts.option_term_structure_hourly again" in done.stdout
    nullable = "select table_name, is_nullable from information_schema.columns where "
    nullable += "(table_name, column_name) in (('option_ohlc_hourly', 'index_price'), "
    nullable += "('option_term_structure_hourly', 'hour')) order by 1"
    assert query(data_dir, nullable) == [
        {"table_name": table, "is_nullable": "NO"} for table in both
    ]
    term = query(data_dir, "select distinct hour from marts.option_term_structure_hourly")
    assert term == [{"hour": datetime(2022, 1, 1, 5, tzinfo=UTC)}]  # rebuilt, the window only

    with duckdb.connect(str(warehouse)) as con:
        con.execute(f"alter table {ohlc} alter column index_price drop not null")
        con.execute(f"update {ohlc} set index_price = null where hour = '2022-01-01 03:00:00+00'")
    with pytest.raises(AssertionError) as failed:
        dbt(data_dir, "run", "--select", "option_ohlc_hourly", **one_hour)
    refused = "Constraint Error: NOT NULL constraint failed: option_ohlc_hourly.index_price"
    assert refused in str(failed.value)  # DuckDB's refusal of the hook's ALTER
    assert query(data_dir, f"select count(*) as n from {ohlc}") == [{"n": rows[0]}]
    # the way out: a full refresh (the whole history, no window) makes the table again
    dbt(data_dir, "run", "--select", "option_ohlc_hourly", "--full-refresh")
    assert query(data_dir, nullable)[0] == {"table_name": "option_ohlc_hourly", "is_nullable": "NO"}
    assert query(data_dir, f"select count(*) as n from {ohlc}") == [{"n": rows[0]}]
