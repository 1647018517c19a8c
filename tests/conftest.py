"""Shared fixtures: the recorded data, a replay server, an isolated data dir and instance."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import psycopg2
import pytest

from mkt_platform.replay import ReplayServer

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
#: The PostgreSQL of the machine (trust auth); tests create and drop their own databases.
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "postgres"}
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
RECORDED_INSTRUMENTS = (
    Path(__file__).resolve().parents[1] / "mkt_platform" / "replay" / "recorded_instruments.yaml"
)


def recorded_klines(symbol: str, interval: str) -> list[list]:
    """Binance's own klines of ``symbol``/``interval`` from ``shared/data``, by open time."""
    rows: dict[int, list] = {}
    for path in sorted((SHARED_DATA / "binance").glob(f"klines_{symbol}_{interval}_*.json")):
        for row in json.loads(path.read_text()):
            rows[row[0]] = row
    return [rows[t] for t in sorted(rows)]


def read_sessions(data_dir: Path, where: str = "true") -> list[dict]:
    """Rows of ``marts.session_ohlc_daily``, read-only, ordered by instrument and start."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute(
            f"select * from marts.session_ohlc_daily where {where} "
            "order by source, instrument, session_start"
        )
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def files_read(warehouse: Path, sql: str) -> set[int]:
    """How many Parquet files each scan of ``sql`` on the warehouse opens ("Total Files Read"
    in its ``EXPLAIN ANALYZE``): ``{n}`` when every scan (a view may scan the lake more than
    once) opens ``n`` files."""
    import re

    from mkt_platform.warehouse import set_lake_variable

    with duckdb.connect(str(warehouse), read_only=True) as con:
        set_lake_variable(con)  # the compiled SQL reads the lake's root from it, as in dbt
        plan = "".join(row[1] for row in con.execute(f"explain analyze {sql}").fetchall())
    counts = re.findall(r"Total Files Read: (\d+)", plan)
    assert counts, plan
    return {int(n) for n in counts}


def compiled_sql(target_path: Path, model: str) -> str:
    """The SQL dbt compiled for ``model`` (its select, not the DDL) in a target folder."""
    (path,) = (target_path / "compiled").rglob(f"{model}.sql")
    return path.read_text()


def ephemeral_sql(model: str) -> str:
    """The SQL of an ephemeral dbt model (a staging model compiled into its readers, so it is
    no relation of the warehouse), compiled as a run compiles it, with the window the
    environment holds (every file when none). It reads the lake's root from the DuckDB
    variable ``mkt_lake``: run it on a connection that set it
    (:func:`mkt_platform.warehouse.set_lake_variable`)."""
    from mkt_platform.lib.dbt import dbt_resource

    invocation = dbt_resource().cli(["compile", "--select", model], raise_on_error=False)
    invocation.wait()
    assert invocation.is_successful(), model
    return compiled_sql(invocation.target_path, model)


def assert_nothing_clipped(chart) -> None:
    """Every title, label, annotation, legend and drawn tick label of ``chart`` (a
    :class:`mkt_platform.lib.charts.Chart`), drawn as its PNG is drawn, lies inside the figure:
    nothing is cut off at its edges. (A tick outside its axis's range is not drawn.)"""
    from matplotlib.legend import Legend
    from matplotlib.text import Text

    chart.png()
    figure = chart.figure
    renderer = figure.canvas.get_renderer()
    edge = figure.bbox.padded(1)  # a pixel of rounding
    ticks, drawn = set(), []
    for axes in figure.axes:
        for axis in (axes.xaxis, axes.yaxis):
            low, high = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                ticks.update((id(tick.label1), id(tick.label2)))
                if low <= tick.get_loc() <= high:
                    drawn += [tick.label1, tick.label2]
    drawn += [
        a for a in figure.findobj(lambda a: isinstance(a, (Text, Legend))) if id(a) not in ticks
    ]
    drawn = [
        artist
        for artist in drawn
        if artist.get_visible() and (not isinstance(artist, Text) or artist.get_text())
    ]
    assert any(isinstance(artist, Legend) for artist in drawn) or len(drawn) > 3
    for artist in drawn:
        box = artist.get_window_extent(renderer)
        inside = edge.x0 <= box.x0 and box.x1 <= edge.x1 and edge.y0 <= box.y0 and box.y1 <= edge.y1
        assert inside, f"{chart.mart}: {artist} at {box} outside the figure {figure.bbox}"


def rel_close(a: Decimal, b: Decimal, rel: Decimal = Decimal("1e-9")) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b))


@pytest.fixture(scope="session", autouse=True)
def _no_charts_unless_asked() -> Iterator[None]:
    """The suite runs its dbt steps without drawing the marts' charts (1-3 s per step, over
    the suite several minutes); the tests of the charts turn them on (MKT_CHARTS=1), and the
    CLI's demo test runs with a user's defaults (charts on)."""
    previous = os.environ.get("MKT_CHARTS")
    os.environ["MKT_CHARTS"] = "0"
    yield
    if previous is None:
        os.environ.pop("MKT_CHARTS", None)
    else:
        os.environ["MKT_CHARTS"] = previous


@pytest.fixture(scope="session", autouse=True)
def _duckdb_file_warehouse() -> Iterator[None]:
    """The tests build the DuckDB-file warehouse (``MKT_WAREHOUSE=duckdb``), which their
    queries open as a file, module fixtures included; DuckLake, the default, is built by the
    tests that are about it (``test_ducklake_warehouse``, ``test_api``, ``test_s3_lake``,
    ``test_dbt_docs``, the deployment test), which hold its marts equal to the file's, and by
    the demo's (``test_cli``, a user's settings)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MKT_WAREHOUSE", "duckdb")
        yield


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test writes into the checkout's ./data (a quarantined payload, say)."""
    monkeypatch.setenv("MKT_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture(scope="session")
def replay() -> Iterator[ReplayServer]:
    with ReplayServer(SHARED_DATA) as server:
        yield server


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, replay: ReplayServer) -> Path:
    """An empty data dir for the lake and warehouse, with the clients pointed at the replay
    and the instrument universe set to what the recordings cover."""
    path = tmp_path / "data"
    monkeypatch.setenv("MKT_DATA_DIR", str(path))
    monkeypatch.setenv("MKT_INSTRUMENTS_FILE", str(RECORDED_INSTRUMENTS))
    monkeypatch.setenv("BINANCE_BASE_URL", replay.base_url("binance"))
    monkeypatch.setenv("HYPERLIQUID_BASE_URL", replay.base_url("hyperliquid"))
    for name, exchange in (
        ("DERIBIT_BASE_URL", "deribit"),
        ("DERIBIT_HISTORY_BASE_URL", "deribit_history"),
    ):
        if exchange in replay.exchanges:
            monkeypatch.setenv(name, replay.base_url(exchange))
    monkeypatch.delenv("MKT_SESSION_ANCHOR_HOUR", raising=False)
    monkeypatch.delenv("MKT_PARTITIONS_START", raising=False)
    return path


@pytest.fixture
def hourly_universe(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The recorded universe cut to the 2023 hourly candles the session marts are built from:
    Binance 1h klines of BTCUSDT, ETHUSDT and SOLUSDT (2022-01..2023-12) and Hyperliquid's
    kPEPE 1h candles (2023-05-21/22 cassette); no 1m klines, funding or option trades, and not
    the Hyperliquid perps recorded from 2024-09 on. For tests of the session marts over long
    2023 ranges, which would otherwise pull months of data they never read."""
    path = write_hourly_universe(tmp_path / "hourly_instruments.yaml")
    monkeypatch.setenv("MKT_INSTRUMENTS_FILE", str(path))
    return path


#: The instruments with 1h candles recorded in 2023, per venue: Binance's 1h klines
#: (2022-01..2023-12) and the kPEPE cassette (2023-05-21/22). The Hyperliquid perps' 1h
#: candles (freqtrade, 2024-09..2025-07) are in the recorded universe too, but not here.
HOURLY_2023 = {"binance": {"BTCUSDT", "ETHUSDT", "SOLUSDT"}, "hyperliquid": {"kPEPE"}}


def write_hourly_universe(path: Path, venues: tuple[str, ...] = ("binance", "hyperliquid")) -> Path:
    """Write to ``path`` the recorded universe of ``venues`` cut to their 2023 1h candles
    (:data:`HOURLY_2023`; no 1m klines, funding or option trades); returns ``path``."""
    import yaml

    recorded = yaml.safe_load(RECORDED_INSTRUMENTS.read_text())["instruments"]
    hourly_1h = {
        (entry["venue"], entry["instrument"])
        for entry in recorded
        if "1h" in entry.get("intervals", [])
    }
    expected = {(venue, i) for venue in venues for i in HOURLY_2023[venue]}
    assert expected <= hourly_1h, f"the recorded universe lacks {expected - hourly_1h}"
    hourly = [
        {**entry, "intervals": ["1h"], "funding": False}
        for entry in recorded
        if (entry["venue"], entry["instrument"]) in expected
    ]
    path.write_text(yaml.safe_dump({"instruments": hourly}))
    return path


@contextmanager
def instance_of(home: Path) -> Iterator[dg.DagsterInstance]:
    """The instance whose dagster.yaml is in ``home``, loaded as Dagster loads DAGSTER_HOME's:
    the embedded config (mkt_platform/dagster.yaml) reads ``{env: DAGSTER_HOME}``, which is
    set to ``home`` while the instance is built."""
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        instance = dg.DagsterInstance.from_config(str(home))
    finally:
        if previous is None:
            del os.environ["DAGSTER_HOME"]
        else:
            os.environ["DAGSTER_HOME"] = previous
    with instance:
        yield instance


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """An in-memory Dagster instance: run and event storage in memory, about twice as fast
    as SQLite files for the thousands of events a ranged run writes. The tests of what
    persists (the CLI, the deployment on PostgreSQL) make their own instance."""
    with dg.DagsterInstance.ephemeral() as test_instance:
        yield test_instance


@pytest.fixture
def instance_with_ref() -> Iterator[dg.DagsterInstance]:
    """A Dagster instance on temporary SQLite files, for what needs an instance reference
    (schedule and sensor contexts that open the instance themselves)."""
    with dg.instance_for_test() as test_instance:
        yield test_instance


def materialize_days(
    start: date, end: date, instance: dg.DagsterInstance, only: tuple[str, ...] | None = None
) -> list:
    """Run the main job (raw pulls, then dbt sessions) for sessions starting on start..end;
    with ``only``, those raw datasets and the marts downstream of them (as ``--only``)."""
    from mkt_platform.definitions import build_definitions
    from mkt_platform.lib.materialize import plan, run_plan

    defs = build_definitions()
    return run_plan(defs, plan(defs, start, end, only=only), instance, progress=lambda _: None)


@pytest.fixture
def postgres_db(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards; ``DAGSTER_POSTGRES_*`` point at it
    (the variables deploy/dagster.yaml reads). Yields its name."""
    name = f"mkt_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(**PG)
    admin.autocommit = True
    admin.cursor().execute(f'create database "{name}"')
    for key, value in {
        "DAGSTER_POSTGRES_HOST": PG["host"],
        "DAGSTER_POSTGRES_PORT": str(PG["port"]),
        "DAGSTER_POSTGRES_USER": PG["user"],
        "DAGSTER_POSTGRES_PASSWORD": "unused-with-trust-auth",
        "DAGSTER_POSTGRES_DB": name,
    }.items():
        monkeypatch.setenv(key, value)
    yield name
    admin.cursor().execute(f'drop database "{name}" with (force)')
    admin.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The deployment test first: under xdist each module goes to one worker, and this one
    (about 3 minutes of a real deployment) would otherwise start last and be the suite's tail."""
    items.sort(key=lambda item: 0 if item.nodeid.startswith("tests/test_deployment.py") else 1)
