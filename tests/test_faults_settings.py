"""Faults in the settings: a misspelled instruments file must never empty the lake.

Issue 12, fault 3: with the key misspelled (``instrument:``) the universe was empty, and the CLI
overwrote every raw partition of its range with empty Parquet, exit 0. The file is now
validated against a schema (errors name the file, line and key), and a re-pull never drops
instruments a partition holds unless told to.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mkt_platform import cli, settings
from mkt_platform.lib.instruments import (
    InstrumentsFileError,
    load_instruments,
    option_trade_currencies,
    volatility_index_series,
)
from tests.conftest import RECORDED_INSTRUMENTS, SHARED_DATA, SYMBOLS
from tests.test_binance_asset import failure_text, pull

LINE = "  - {venue: binance, instrument: BTCUSDT, base: BTC, quote: USDT, market: spot, intervals: [1h]}\n"


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        # The fault as found: the top-level key misspelled.
        (
            "instrument:\n" + LINE,
            1,
            "unknown key 'instrument' (the file's one key is 'instruments')",
        ),
        # A misspelled interval was silently dropped.
        (
            "instruments:\n" + LINE.replace("[1h]", "[1h, 1H]"),
            2,
            "unknown interval '1H' for binance spot",
        ),
        # Deribit's resolutions are numbers in YAML (3600), still checked against what is
        # collected.
        (
            "instruments:\n"
            "  - {venue: deribit, instrument: BTC, base: BTC, quote: USD, market: option, "
            "intervals: [3601]}\n",
            2,
            "unknown interval '3601' for deribit option (collected: ['1D', '3600'])",
        ),
        # A second option currency would mix its trades into the first one's marts.
        (
            "instruments:\n"
            "  - {venue: deribit, instrument: BTC, base: BTC, quote: USD, market: option, "
            "intervals: []}\n"
            "  - {venue: deribit, instrument: ETH, base: ETH, quote: USD, market: option, "
            "intervals: []}\n",
            3,
            "a second Deribit option currency collecting option trades ('ETH' after 'BTC')",
        ),
        (
            "instruments:\n" + LINE.replace("}", ", option_trades: false}"),
            2,
            "instruments.0.option_trades: option trades are collected for Deribit options only",
        ),
        (
            "instruments:\n" + LINE + LINE.replace("intervals", "interval"),
            3,
            "unknown key 'interval'",
        ),
        ("instruments:\n" + LINE.replace("binance", "kraken"), 2, "unknown venue 'kraken'"),
        ("instruments:\n" + LINE.replace("spot", "perp"), 2, "binance has no 'perp' market"),
        ("instruments:\n" + LINE.replace(", quote: USDT", ""), 2, "missing key 'quote'"),
        ("instruments:\n" + LINE + LINE, 3, "repeats binance BTCUSDT"),
        ("instruments:\n" + LINE.replace("[1h]}", "[1h]"), 3, "not valid YAML"),
        ("# nothing but a comment\n", 1, "the file is empty"),
        ("- {venue: binance}\n", 1, "Input should be a valid dictionary"),
    ],
)
def test_instruments_file_errors_name_the_file_line_and_key(tmp_path, text, line, says):
    path = tmp_path / "instruments.yaml"
    path.write_text(text)
    with pytest.raises(InstrumentsFileError) as error:
        load_instruments(path)
    assert str(error.value).startswith(f"{path}, line {line}: "), str(error.value)
    assert says in str(error.value)


def test_a_second_option_currency_collects_its_dvol_alone(tmp_path):
    """ETH beside BTC with ``option_trades: false``: both currencies' DVOL series are
    collected, the option trades of BTC alone (what the options marts hold)."""
    path = tmp_path / "instruments.yaml"
    path.write_text(
        "instruments:\n"
        "  - {venue: deribit, instrument: BTC, base: BTC, quote: USD, market: option}\n"
        "  - {venue: deribit, instrument: ETH, base: ETH, quote: USD, market: option, "
        "intervals: [3600], option_trades: false}\n"
    )
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("MKT_INSTRUMENTS_FILE", str(path))
    try:
        assert option_trade_currencies() == ("BTC",)
        assert volatility_index_series() == (("BTC", "1D"), ("ETH", "1D"), ("ETH", "3600"))
    finally:
        monkeypatch.undo()
    assert option_trade_currencies() == ("BTC",)  # the session's own universe again


def test_the_shipped_universes_validate():
    assert (
        len(load_instruments(settings_default := Path(cli.__file__).parent / "instruments.yaml"))
        >= 8
    ), settings_default
    recorded = load_instruments(RECORDED_INSTRUMENTS)
    assert [i.instrument for i in recorded if i.venue == "binance" and i.intervals] == list(SYMBOLS)
    # the four order books cryptofeed recorded, and nothing else, are snapshotted
    assert [i.instrument for i in recorded if i.order_book] == [
        "NKNUSDT",
        "BLZETH",
        "LRCBTC",
        "RUNEEUR",
    ]


def materialize_one_day(monkeypatch) -> int:
    """``mkt-platform materialize`` of 2023-01-02 against the replay; its exit code."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return cli.main(
        [
            "materialize",
            "--start",
            "2023-01-02",
            "--end",
            "2023-01-02",
            "--replay",
            str(SHARED_DATA),
        ]
    )


def test_cli_refuses_a_misspelled_instruments_file_before_any_run(tmp_path, monkeypatch, capsys):
    """The reported fault end to end: the CLI exits 2 naming the file and line, and the lake
    and the instance stay untouched."""
    bad = tmp_path / "instruments.yaml"
    bad.write_text("instrument:\n" + LINE)
    monkeypatch.setenv("MKT_INSTRUMENTS_FILE", str(bad))
    code = materialize_one_day(monkeypatch)
    err = capsys.readouterr().err
    assert code == 2
    assert f"{bad}, line 1: instrument: unknown key 'instrument'" in err
    assert not (settings.lake_dir()).exists()


def test_a_shrunk_universe_never_overwrites_a_partition(
    data_dir, replay, instance, tmp_path, monkeypatch
):
    """Three symbols pulled, then the universe loses two: the re-pull is refused before any
    request, naming the asset, partitions, instruments and how to force it; the files keep
    their 72 rows. With MKT_ALLOW_UNIVERSE_SHRINK=1 the same re-pull is allowed."""
    assert pull(replay, instance, "2023-01-02", "2023-01-03").success
    files = [
        data_dir / f"lake/raw/binance/klines_1h/date=2023-01-0{d}/part.parquet" for d in (2, 3)
    ]
    before = [f.read_bytes() for f in files]
    assert [pq.read_table(f).num_rows for f in files] == [72, 72]

    shrunk = tmp_path / "shrunk.yaml"
    shrunk.write_text("instruments:\n" + LINE)
    monkeypatch.setenv("MKT_INSTRUMENTS_FILE", str(shrunk))
    requests = replay.request_count("binance")
    result = pull(replay, instance, "2023-01-02", "2023-01-03")
    assert not result.success
    text = failure_text(result)
    assert (
        "binance_klines_1h: refusing to overwrite 2 partition(s) (2023-01-02..2023-01-03)" in text
    )
    assert "ETHUSDT, SOLUSDT" in text and str(shrunk) in text
    assert "MKT_ALLOW_UNIVERSE_SHRINK=1" in text
    assert replay.request_count("binance") == requests, "nothing may be pulled"
    assert [f.read_bytes() for f in files] == before

    monkeypatch.setenv("MKT_ALLOW_UNIVERSE_SHRINK", "1")
    assert pull(replay, instance, "2023-01-02", "2023-01-03").success
    assert [pq.read_table(f).num_rows for f in files] == [24, 24]
    monkeypatch.setenv("MKT_ALLOW_UNIVERSE_SHRINK", "yes")
    with pytest.raises(settings.SettingError, match="MKT_ALLOW_UNIVERSE_SHRINK must be 0 or 1"):
        settings.allow_universe_shrink()


def test_a_charts_setting_that_lies_is_refused_by_name(monkeypatch):
    """MKT_CHARTS is 0 or 1; anything else is an error naming it (a dbt step logs it as a
    warning and keeps its materializations, without the chart). 0 draws nothing."""
    from datetime import UTC, datetime

    import dagster as dg

    from mkt_platform.lib.dbt import chart_metadata

    window = dg.TimeWindow(datetime(2024, 4, 1, tzinfo=UTC), datetime(2024, 4, 2, tzinfo=UTC))
    monkeypatch.setenv("MKT_CHARTS", "yes")
    with pytest.raises(settings.SettingError, match="MKT_CHARTS must be 0 or 1"):
        chart_metadata(["warehouse.marts.option_smile_hourly"], window)
    monkeypatch.setenv("MKT_CHARTS", "0")
    assert chart_metadata(["warehouse.marts.option_smile_hourly"], window) == {}


def test_a_warehouse_setting_that_lies_is_refused_before_any_run(monkeypatch, capsys):
    """MKT_WAREHOUSE is duckdb or ducklake; a typo would otherwise build a DuckDB file the
    user did not ask for. The CLI exits 2 naming the setting, and nothing is pulled; the
    readers refuse it too."""
    from mkt_platform import warehouse

    monkeypatch.setenv("MKT_WAREHOUSE", "duck_lake")
    code = materialize_one_day(monkeypatch)
    assert code == 2
    assert (
        "MKT_WAREHOUSE must be one of duckdb, ducklake, got 'duck_lake'" in capsys.readouterr().err
    )
    assert not settings.lake_dir().exists()
    with pytest.raises(settings.SettingError, match="MKT_WAREHOUSE"):
        warehouse.connect()


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("mysql:host=db", "must be sqlite:<file> or postgres:<conninfo>"),
        ("warehouse.sqlite", "must be sqlite:<file> or postgres:<conninfo>"),
        ("postgres:host=db user=mkt password=hunter2", "holds a password"),
        ("postgres:password=hunter2 host=db", "holds a password"),
    ],
)
def test_a_ducklake_catalog_setting_that_lies_or_leaks_is_refused(monkeypatch, value, says):
    """The DuckLake catalog is a SQLite file or a PostgreSQL conninfo; a password in it would
    be shown wherever the warehouse is described, so it is refused (and not repeated)."""
    monkeypatch.setenv("MKT_DUCKLAKE_CATALOG", value)
    with pytest.raises(settings.SettingError, match="MKT_DUCKLAKE_CATALOG") as error:
        settings.ducklake_catalog()
    assert says in str(error.value) and "hunter2" not in str(error.value)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("MKT_API_TOKEN", "hunter2-short", "MKT_API_TOKEN is 13 characters long"),
        ("MKT_API_PORT", "80a", "MKT_API_PORT must be a port number"),
        ("MKT_API_PORT", "70000", "MKT_API_PORT must be a port number"),
        ("MKT_WAREHOUSE", "duck_lake", "MKT_WAREHOUSE must be one of"),
    ],
)
def test_an_api_setting_that_lies_is_refused_before_it_listens(
    monkeypatch, capsys, name, value, says
):
    """`mkt-platform api` exits 2 naming the setting before it opens a port: a token too short
    to be a secret (its length is said, never the token), a port that is no port, a warehouse
    kind that does not exist."""
    from mkt_platform import cli

    for other in ("MKT_API_TOKEN", "MKT_API_PORT", "MKT_WAREHOUSE"):
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(name, value)
    assert cli.main(["api"]) == 2
    err = capsys.readouterr().err
    assert says in err and "hunter2" not in err, err


@pytest.mark.parametrize("value", ["-1", "7d", "1.5"])
def test_a_retention_setting_that_lies_fails_the_upkeep_by_name(monkeypatch, tmp_path, value):
    """MKT_DUCKLAKE_RETENTION_DAYS is a whole number of days: anything else fails the
    warehouse_maintenance run naming the setting, before it touches the DuckLake."""
    from mkt_platform.definitions import build_definitions

    monkeypatch.setenv("MKT_WAREHOUSE", "ducklake")
    monkeypatch.setenv("MKT_DUCKLAKE_RETENTION_DAYS", value)
    job = build_definitions().resolve_job_def("warehouse_maintenance")
    with pytest.raises(settings.SettingError, match="MKT_DUCKLAKE_RETENTION_DAYS must be"):
        job.execute_in_process()
    assert not (settings.data_dir() / "warehouse.sqlite").exists()


def test_dbt_without_a_data_dir_refuses_to_connect_naming_the_setting(monkeypatch):
    """dbt finds the DuckLake warehouse and the raw lake from MKT_DATA_DIR (the profile's
    plugin: Dagster always sets it). Run by hand without it, dbt stops before it touches
    any folder, saying which setting to give; it never guesses one folder for the lake and
    another for the warehouse."""
    from mkt_platform.lib.dbt import dbt_resource

    monkeypatch.delenv("MKT_DATA_DIR")
    monkeypatch.setenv("MKT_WAREHOUSE", "ducklake")
    invocation = dbt_resource().cli(["debug"], raise_on_error=False)
    invocation.wait()
    assert not invocation.is_successful()
    logged = (invocation.target_path / "dbt.log").read_text()
    assert "MKT_DATA_DIR is not set" in logged
