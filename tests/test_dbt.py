"""dbt's own tests (the unit tests of the session metrics, the data tests on bad data), and
how dbt nodes look in Dagster: owners, descriptions, metadata, the warehouse's row counts."""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pytest
from dagster_dbt import DbtProject

from mkt_platform.defs.binance.contract import KLINE_CONTRACT, KLINE_LAKE_SCHEMA
from mkt_platform.defs.equity.definitions import defs as equity_defs
from mkt_platform.defs.options.assets import build_utc_daily_dbt_assets
from mkt_platform.defs.sessions.assets import (
    build_session_daily_dbt_assets,
    build_session_monthly_dbt_assets,
    build_session_weekly_dbt_assets,
)
from mkt_platform.lib import lake
from mkt_platform.lib.dbt import (
    DBT_PROJECT_DIR,
    MktDbtProjectPreparer,
    dbt_build_args,
    dbt_project,
    dbt_resource,
    dbt_window_env,
    environment,
    warehouse_metadata,
)
from mkt_platform.warehouse import set_lake_variable
from tests.conftest import compiled_sql, files_read, recorded_klines


def dbt(*args: str):
    invocation = dbt_resource().cli(list(args), raise_on_error=False)
    invocation.wait()
    return invocation


def results(invocation) -> dict[str, str]:
    run_results = json.loads((invocation.target_path / "run_results.json").read_text())
    return {r["unique_id"]: r["status"] for r in run_results["results"]}


def write_day(day: str, rows: list[list]) -> None:
    table = KLINE_CONTRACT.to_table(rows, "test")
    table = table.add_column(0, "symbol", pa.array(["BTCUSDT"] * len(rows))).cast(KLINE_LAKE_SCHEMA)
    lake.write_parquet_atomic(table, lake.raw_partition_path("binance", "klines_1h", day))


def day_of_btc(day_number: int) -> list[list]:
    """Binance's real BTCUSDT 1h klines of one UTC day (days since 1970-01-01)."""
    return [r for r in recorded_klines("BTCUSDT", "1h") if r[0] // 86_400_000 == day_number]


@pytest.mark.slow
def test_unit_tests_pass_here_and_partition_builds_leave_them_out(data_dir):
    """Every dbt unit test of the project (rounding, tie and gap rules of the sessions, the
    options marts' methods) passes, also with the session window Dagster sets in the
    environment (which must not filter their rows). A partition run's build leaves them out
    (they depend on the code, not on the partition) and runs the data tests."""
    write_day("2023-01-05", day_of_btc(19362))
    window = dg.TimeWindow(datetime(2023, 1, 5, 8, tzinfo=UTC), datetime(2023, 1, 6, 8, tzinfo=UTC))
    declared = json.loads(dbt_project().manifest_path.read_text())["unit_tests"]
    assert len(declared) >= 16
    with environment(dbt_window_env(window)):
        build = dbt(*dbt_build_args(), "--write-json")  # run_results.json, for `results`
        # Unit tests read their inputs' columns from the warehouse: after the build.
        unit_run = dbt("test", "--select", "test_type:unit", *dbt_build_args()[1:3])
    statuses = results(build)
    assert build.is_successful(), statuses
    assert not [uid for uid in statuses if uid.startswith("unit_test.")]
    assert statuses["model.mkt_platform.session_ohlc_daily"] == "success"
    assert [uid for uid in statuses if uid.startswith("test.")]

    # every node the command ran but its on-run-start hook (macros/contracts.sql)
    unit = {uid: s for uid, s in results(unit_run).items() if not uid.startswith("operation.")}
    assert set(unit) == set(declared)
    assert len([uid for uid in unit if ".session_ohlc_daily." in uid]) == 4
    assert set(unit.values()) == {"pass"} and unit_run.is_successful()
    assert_every_model_column_documented(data_dir / "warehouse.duckdb")


def assert_every_model_column_documented(warehouse: Path) -> None:
    """Every model the build made has, in the warehouse, exactly the columns its yml
    describes, each with a description: no column undocumented, and no yml entry left for a
    column the model no longer has (a renamed one, say)."""
    models = [
        n
        for n in json.loads(dbt_project().manifest_path.read_text())["nodes"].values()
        if n["resource_type"] == "model" and n["config"]["materialized"] != "ephemeral"
    ]  # an ephemeral model is compiled into the models that read it: nothing is built
    assert len(models) >= 13
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for model in models:
            built = [
                name
                for (name,) in con.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = ? and table_name = ? order by ordinal_position",
                    [model["schema"], model["name"]],
                ).fetchall()
            ]
            assert built, model["name"]
            documented = {
                c: column["description"].strip() for c, column in model["columns"].items()
            }
            assert set(built) == set(documented), model["name"]
            assert all(documented.values()), model["name"]


@pytest.mark.slow
def test_ohlc_sanity_rejects_a_corrupted_candle(data_dir):
    """A candle whose low is above its open must fail the build's data tests.

    The lake holds real BTCUSDT klines of 2023-01-05 with one candle corrupted on purpose
    (low raised above the open), which no exchange answer would contain. The staging model is
    ephemeral, so the candle is caught by the tests of int_candles_1h, which compiles it in."""
    rows = day_of_btc(19362)
    assert len(rows) == 24
    write_day("2023-01-05", rows)
    clean = dbt("build", "--select", "int_candles_1h")
    assert clean.is_successful(), results(clean)

    rows[5] = [*rows[5][:3], str(Decimal(rows[5][1]) + 1), *rows[5][4:]]
    write_day("2023-01-05", rows)
    broken = dbt("build", "--select", "int_candles_1h")
    assert not broken.is_successful()
    failed = {uid for uid, status in results(broken).items() if status == "fail"}
    assert len(failed) == 1
    assert "ohlc_sanity_int_candles_1h" in failed.pop()


@pytest.mark.slow
def test_a_one_session_build_reads_only_the_lake_files_of_its_window(data_dir):
    """Five days of real BTCUSDT klines in the lake; the window of the session 2023-01-05
    08:00 to 01-06 08:00 makes the (ephemeral) staging model open the files of those two UTC
    days only (hive partition pruning before the dedupe), with all their 48 candles; with no
    window it opens all five. int_candles_1h, which compiles it in, keeps the history: the
    windowed build replaces its two days and leaves the other three."""
    for day_number in range(19360, 19365):  # 2023-01-03 .. 2023-01-07
        day = datetime.fromtimestamp(day_number * 86_400, UTC).date().isoformat()
        write_day(day, day_of_btc(day_number))
    warehouse = data_dir / "warehouse.duckdb"
    whole = dbt("build", "--select", "int_candles_1h")
    assert whole.is_successful(), results(whole)
    assert files_read(warehouse, compiled_sql(whole.target_path, "stg_binance__klines")) == {5}
    window = dg.TimeWindow(datetime(2023, 1, 5, 8, tzinfo=UTC), datetime(2023, 1, 6, 8, tzinfo=UTC))
    with environment(dbt_window_env(window)):
        windowed = dbt("build", "--select", "int_candles_1h")
    assert windowed.is_successful(), results(windowed)
    sql = compiled_sql(windowed.target_path, "stg_binance__klines")
    assert files_read(warehouse, sql) == {2}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        set_lake_variable(con)  # the compiled SQL reads the lake's root from it
        staged = con.execute(
            f"select partition_date::varchar, count(*) from ({sql}) group by all order by 1"
        ).fetchall()
        kept = con.execute(
            "select count(*), count(distinct open_time) from intermediate.int_candles_1h"
        ).fetchone()
    assert staged == [("2023-01-05", 24), ("2023-01-06", 24)]
    assert kept == (120, 120)


# ---------------------------------------------------------------- dbt nodes in Dagster


def dbt_assets_defs() -> list[dg.AssetsDefinition]:
    return [
        build_session_daily_dbt_assets(),
        build_session_weekly_dbt_assets(),
        build_session_monthly_dbt_assets(),
        build_utc_daily_dbt_assets(),
        *equity_defs().assets,
    ]


def test_every_dbt_asset_has_its_yml_owners_and_description_without_sql():
    """Each dbt model's asset: the owners its dbt meta names (dbt_project.yml gives the
    project's team), its yml description and nothing after it (dagster-dbt appends the raw
    SQL, which the UI then shows even in the catalog list), and no ``dagster_dbt/project``
    metadata (an unserializable DbtProject in the UI). Each mart names the column its
    partition window filters on, a column the yml describes."""
    manifest = json.loads(dbt_project().manifest_path.read_text())
    models = {
        n["name"]: n
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["config"]["materialized"] != "ephemeral"
    }  # an ephemeral model is no asset: it is compiled into the models that read it
    specs = {
        key.to_user_string(): spec
        for assets in dbt_assets_defs()
        for key, spec in assets.specs_by_key.items()
    }
    seeds = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "seed"}
    assert set(specs) == set(models) | set(seeds)
    for name, seed in seeds.items():  # a seed is data, not SQL: its owners and description
        spec = specs.pop(name)
        assert spec.owners == ["team:data-platform"] == seed["meta"]["dagster"]["owners"]
        assert spec.description == seed["description"].strip() != ""
    for name, spec in specs.items():
        model = models[name]
        assert spec.owners == ["team:data-platform"] == model["meta"]["dagster"]["owners"]
        assert spec.description == model["description"].strip() != ""
        # no line of the model's SQL (long enough to say something) is in the description
        sql = [line.strip() for line in model["raw_code"].splitlines() if len(line.strip()) > 20]
        assert sql and not [line for line in sql if line in spec.description], name
        assert not re.search(r"\bselect\b", spec.description, re.IGNORECASE), name
        assert "Raw SQL" not in spec.description and "{{" not in spec.description
        assert "dagster_dbt/project" not in spec.metadata
        assert "dagster_dbt/manifest" in spec.metadata  # dagster-dbt reads it at run time
        if model["config"]["materialized"] in ("table", "incremental"):
            # a table built per window (every mart, int_candles_1h, the option trades) names
            # the column its window filters on; a view holds no rows to count
            assert spec.metadata["partition_expr"] in model["columns"], name
        elif model["fqn"][1] != "marts":
            assert "partition_expr" not in spec.metadata, name


def test_owners_default_and_dbt_owner_convention():
    """A model whose meta names no Dagster owners takes dbt's ``owner`` convention (a team
    name becomes ``team:<name>``, an email stays), else the platform team."""
    from mkt_platform.lib.dbt import dbt_owners

    assert dbt_owners({"meta": {"dagster": {"owners": ["a@example.org"]}}}) == ["a@example.org"]
    assert dbt_owners({"meta": {"owner": "options-desk"}}) == ["team:options-desk"]
    assert dbt_owners({"meta": {"owner": ["b@example.org", "team:x"]}}) == [
        "b@example.org",
        "team:x",
    ]
    assert dbt_owners({"meta": {}}) == ["team:data-platform"]


@pytest.fixture
def project_copy(tmp_path: Path) -> DbtProject:
    """A copy of the dbt project (no target folder) with the platform's preparer, whose parse
    only records that it ran and writes an empty manifest."""
    folder = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, folder, ignore=shutil.ignore_patterns("target", "logs"))
    from dagster._record import replace

    project = replace(
        DbtProject(project_dir=folder, profiles_dir=folder), preparer=MktDbtProjectPreparer()
    )
    return project


def test_prepare_if_dev_parses_only_a_missing_or_outdated_manifest(
    project_copy: DbtProject, monkeypatch: pytest.MonkeyPatch
):
    """``DbtProject.prepare_if_dev`` with the platform's preparer: a missing manifest is
    parsed, with or without ``dagster dev``; a saved one is used as is (loading the code
    location pays no dbt parse), except under ``dagster dev`` once a project file is newer."""
    parsed: list[Path] = []

    def parse(project: DbtProject) -> None:
        parsed.append(project.manifest_path)
        project.manifest_path.write_text("{}")

    monkeypatch.setattr(MktDbtProjectPreparer, "_parse", staticmethod(parse))
    monkeypatch.delenv("DAGSTER_IS_DEV_CLI", raising=False)
    project_copy.prepare_if_dev()
    assert parsed == [project_copy.manifest_path]
    project_copy.prepare_if_dev()
    assert len(parsed) == 1

    model = project_copy.project_dir / "models" / "marts" / "session_ohlc_daily.sql"
    later = project_copy.manifest_path.stat().st_mtime + 10
    os.utime(model, (later, later))
    project_copy.prepare_if_dev()
    assert len(parsed) == 1  # not under dagster dev: the saved manifest stays
    monkeypatch.setenv("DAGSTER_IS_DEV_CLI", "1")
    project_copy.prepare_if_dev()
    assert len(parsed) == 2
    os.utime(project_copy.manifest_path, (later + 1, later + 1))
    project_copy.prepare_if_dev()
    assert len(parsed) == 2


def test_dbt_project_is_prepared_by_the_platform_preparer():
    project = dbt_project()
    assert isinstance(project.preparer, MktDbtProjectPreparer)
    assert project.manifest_path.exists()


def test_warehouse_metadata_counts_tables_and_the_window(tmp_path: Path):
    """Row counts from the warehouse: the whole table (``dagster/row_count``) and the rows of
    the run's window by the relation's partition column (``dagster/partition_row_count``),
    a DATE column compared as UTC days whatever the machine's time zone; a view gets its
    column schema and no count (counting it would run its query over the lake); a relation
    the warehouse lacks is left out."""
    data_dir = tmp_path / "data"  # MKT_DATA_DIR (conftest)
    data_dir.mkdir()
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        con.execute("set TimeZone = 'Asia/Tokyo'")
        con.execute("create schema marts")
        con.execute("create table marts.days (funding_date date, x integer)")
        con.execute(
            "insert into marts.days values ('2021-12-31', 1), ('2022-01-01', 2), "
            "('2022-01-01', 3), ('2022-01-02', 4)"
        )
        con.execute("create table marts.hours (hour timestamptz)")
        con.execute(
            "insert into marts.hours values ('2022-01-01 00:00:00+00'), "
            "('2021-12-31 23:00:00+00'), ('2022-01-01 23:59:59+00')"
        )
        con.execute("create view marts.a_view as select * from marts.days")
    window = dg.TimeWindow(datetime(2022, 1, 1, tzinfo=UTC), datetime(2022, 1, 2, tzinfo=UTC))
    found = warehouse_metadata(
        {
            "warehouse.marts.days": "funding_date",
            "warehouse.marts.hours": "hour",
            "warehouse.marts.a_view": None,
            "warehouse.marts.missing": "hour",
        },
        window,
    )
    assert set(found) == {"warehouse.marts.days", "warehouse.marts.hours", "warehouse.marts.a_view"}
    days = found["warehouse.marts.days"]
    assert (days["dagster/row_count"], days["dagster/partition_row_count"]) == (4, 2)
    assert [c.name for c in days["dagster/column_schema"].columns] == ["funding_date", "x"]
    hours = found["warehouse.marts.hours"]
    assert (hours["dagster/row_count"], hours["dagster/partition_row_count"]) == (3, 2)
    assert set(found["warehouse.marts.a_view"]) == {"dagster/column_schema"}
    whole = warehouse_metadata({"warehouse.marts.days": "funding_date"}, None)
    assert whole["warehouse.marts.days"]["dagster/row_count"] == 4
    assert "dagster/partition_row_count" not in whole["warehouse.marts.days"]


@pytest.mark.slow
def test_a_mart_materialization_carries_its_row_counts_and_columns(data_dir, instance):
    """Two daily sessions built one run each: the second run's materialization of
    ``session_ohlc_daily`` carries the table's rows (``dagster/row_count``, both sessions)
    and its own window's (``dagster/partition_row_count``), each equal to DuckDB's count,
    and the warehouse's columns with their yml descriptions; int_candles_1h its own counts;
    a view carries its column schema and no row count."""
    for day_number in range(19361, 19364):  # 2023-01-04 .. 2023-01-06
        day = datetime.fromtimestamp(day_number * 86_400, UTC).date().isoformat()
        write_day(day, day_of_btc(day_number))
    daily = build_session_daily_dbt_assets()
    for partition in ("2023-01-04", "2023-01-05"):
        result = dg.materialize(
            [daily], partition_key=partition, resources={"dbt": dbt_resource()}, instance=instance
        )
        assert result.success
    mart = dg.AssetKey("session_ohlc_daily")
    (record,) = instance.fetch_materializations(mart, limit=1).records
    assert record.partition_key == "2023-01-05"
    metadata = record.asset_materialization.metadata
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        (total,) = con.execute("select count(*) from marts.session_ohlc_daily").fetchone()
        (in_window,) = con.execute(
            "select count(*) from marts.session_ohlc_daily where session_start = "
            "timestamptz '2023-01-05 08:00:00+00'"
        ).fetchone()
        columns = con.execute(
            "select column_name, data_type from information_schema.columns where "
            "table_schema = 'marts' and table_name = 'session_ohlc_daily' "
            "order by ordinal_position"
        ).fetchall()
    assert (total, in_window) == (2, 1)
    assert metadata["dagster/row_count"].value == total
    assert metadata["dagster/partition_row_count"].value == in_window
    schema = metadata["dagster/column_schema"].value
    assert [(c.name, c.type) for c in schema.columns] == columns
    assert all(c.description for c in schema.columns)
    # int_candles_1h keeps the history: the three days' 72 candles after two runs that each
    # read two days of files, 24 of them in the second run's session window
    (candles,) = instance.fetch_materializations(dg.AssetKey("int_candles_1h"), limit=1).records
    candles = candles.asset_materialization.metadata
    assert (candles["dagster/row_count"].value, candles["dagster/partition_row_count"].value) == (
        72,
        24,
    )
    view = instance.fetch_materializations(dg.AssetKey("realized_volatility_rolling"), limit=1)
    viewed = view.records[0].asset_materialization.metadata
    assert "dagster/column_schema" in viewed and "dagster/row_count" not in viewed


@pytest.mark.slow
def test_a_mart_built_in_another_run_than_its_candles_reads_its_own_window(data_dir, instance):
    """The race a backfill can make (found by the deployment test: 12 of 90 sessions there):
    run 1 builds int_candles_1h for the session of 2023-01-04, run 2 for 01-05, and run 3
    builds session_ohlc_daily alone for 01-04. Run 3 must read 01-04's candles. (When the
    staging was a view baked with each run's window, run 3 read run 2's window: no row, and
    the partition was marked materialized.) The session equals its 24 recorded klines."""
    for day_number in range(19361, 19364):  # 2023-01-04 .. 2023-01-06
        day = datetime.fromtimestamp(day_number * 86_400, UTC).date().isoformat()
        write_day(day, day_of_btc(day_number))
    daily = build_session_daily_dbt_assets()
    for name, partition in (
        ("int_candles_1h", "2023-01-04"),
        ("int_candles_1h", "2023-01-05"),
        ("session_ohlc_daily", "2023-01-04"),
    ):
        result = dg.materialize(
            [daily],
            selection=[name],
            partition_key=partition,
            resources={"dbt": dbt_resource()},
            instance=instance,
        )
        assert result.success
        built = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
        assert built == {name}
    start = datetime(2023, 1, 4, 8, tzinfo=UTC)
    klines = [
        k
        for day_number in (19361, 19362)
        for k in day_of_btc(day_number)
        if start.timestamp() * 1000 <= k[0] < start.timestamp() * 1000 + 86_400_000
    ]
    assert len(klines) == 24
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        sessions = con.execute(
            "select session_start, open, high, low, close, candle_count "
            "from marts.session_ohlc_daily"
        ).fetchall()
    assert sessions == [
        (
            start,
            Decimal(klines[0][1]),
            max(Decimal(k[2]) for k in klines),
            min(Decimal(k[3]) for k in klines),
            Decimal(klines[-1][4]),
            24,
        )
    ]


@pytest.mark.slow
def test_a_partition_runs_data_tests_check_only_its_window(data_dir):
    """A partition run tests the rows of its own window (macros/test_window.sql): a session
    row broken on purpose in the warehouse (low raised above the open: no build writes
    that) does not fail the next session's build, which did not touch it, and is still
    caught by the same test run over the whole mart (dbt by hand, no window)."""
    for day_number in (19362, 19363, 19364):  # real BTCUSDT klines of 2023-01-05 .. 01-07
        write_day(
            datetime.fromtimestamp(day_number * 86_400, UTC).date().isoformat(),
            day_of_btc(day_number),
        )
    build = ["build", "--select", "+session_ohlc_daily", "--exclude-resource-type", "unit_test"]
    first = dg.TimeWindow(datetime(2023, 1, 5, 8, tzinfo=UTC), datetime(2023, 1, 6, 8, tzinfo=UTC))
    with environment(dbt_window_env(first)):
        assert dbt(*build).is_successful()
    warehouse = data_dir / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "update marts.session_ohlc_daily set low = open + 1 "
            "where session_start = timestamptz '2023-01-05 08:00:00+00'"
        )
    second = dg.TimeWindow(first.end, datetime(2023, 1, 7, 8, tzinfo=UTC))
    with environment(dbt_window_env(second)):
        windowed = dbt(*build)
    assert windowed.is_successful(), results(windowed)
    sanity = [uid for uid in results(windowed) if "ohlc_sanity_session_ohlc_daily" in uid]
    assert sanity and all(results(windowed)[uid] == "pass" for uid in sanity)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (sessions, broken) = con.execute(
            "select count(*), count(*) filter (where low > open) from marts.session_ohlc_daily"
        ).fetchone()
    assert (sessions, broken) == (2, 1)  # the broken row is still there, outside the window

    whole = dbt("test", "--select", "session_ohlc_daily")
    failed = [uid for uid, status in results(whole).items() if status == "fail"]
    assert len(failed) == 1 and "ohlc_sanity_session_ohlc_daily" in failed[0]


def _first_parse_events(target: Path) -> tuple[set[str], str]:
    """The names of dbt's events in a target folder's ``dbt.log``, and what its partial
    parse said it re-parsed (empty when it did not partial-parse)."""
    events = [json.loads(line)["info"] for line in (target / "dbt.log").open()]
    enabled = next((e["msg"] for e in events if e["name"] == "PartialParsingEnabled"), "")
    return {e["name"] for e in events}, enabled


@pytest.mark.parametrize("warehouse_kind", ["ducklake", "duckdb"])
def test_a_data_directorys_first_dbt_run_starts_from_a_parse_saved_elsewhere(
    tmp_path, monkeypatch, warehouse_kind
):
    """The parse saved in one data directory (as the project's own, written when the code
    location loads or the image is built) serves another's first dbt run: neither profile
    target holds a path (the plugin attaches the warehouse, from a secret for DuckLake, and
    sets the lake variable), so dbt changes nothing, not even the sources' files."""
    import mkt_platform.lib.dbt as dbt_lib

    monkeypatch.setenv("MKT_WAREHOUSE", warehouse_kind)
    parse = ["parse", "--vars", dbt_lib.dbt_vars_json()]
    monkeypatch.setenv("MKT_DATA_DIR", str(tmp_path / "elsewhere"))
    saved = dbt_resource().cli(parse, target_path=tmp_path / "saved", raise_on_error=False)
    saved.wait()
    assert saved.is_successful()
    monkeypatch.setattr(
        dbt_lib, "project_parse", lambda: saved.target_path / dbt_lib.PARTIAL_PARSE_FILE
    )

    monkeypatch.setenv("MKT_DATA_DIR", str(tmp_path / "fresh" / "data"))
    assert not dbt_lib.partial_parse_cache().exists()
    with dbt_lib.invocation_target("probe", "0" * 8) as target:
        first = dbt_resource().cli(parse, target_path=target, raise_on_error=False)
        first.wait()
        assert first.is_successful()
        names, enabled = _first_parse_events(target)
    assert "UnableToPartialParse" not in names
    assert "0 files deleted, 0 files added, 0 files changed" in enabled, enabled
    assert dbt_lib.partial_parse_cache().exists()  # kept for the directory's next run


def test_a_kinds_first_dbt_run_leaves_its_parse_for_the_next_data_directory(tmp_path, monkeypatch):
    """Where the project has no saved parse for the warehouse kind (the code location was
    prepared under the other kind, as CI's `dg check defs` prepares DuckLake's before the
    suite builds DuckDB files), or a stale one, a data directory's first dbt run parses the
    project and leaves its parse for the project: the next data directory's first run
    re-parses nothing. The file holds the kind in its name (a parse serves only the profile
    target it was made for)."""
    import mkt_platform.lib.dbt as dbt_lib

    monkeypatch.setenv("MKT_WAREHOUSE", "duckdb")
    kept = tmp_path / "project" / "target" / "partial_parse.duckdb.msgpack"
    kept.parent.mkdir(parents=True)
    monkeypatch.setattr(dbt_lib, "project_parse", lambda: kept)
    # dagster-dbt also starts a target with no saved parse from the project's current target
    # folder's (``$DBT_TARGET_PATH``, else ``target``), which another command may have left
    # in the checkout: none here, so that the first run below has no parse to start from.
    monkeypatch.setenv("DBT_TARGET_PATH", str(tmp_path / "no_current_target"))

    def first_run_of(directory: str) -> tuple[set[str], str]:
        monkeypatch.setenv("MKT_DATA_DIR", str(tmp_path / directory / "data"))
        with dbt_lib.invocation_target("probe", "0" * 8) as target:
            run = dbt_resource().cli(
                ["parse", "--vars", dbt_lib.dbt_vars_json()], target_path=target
            )
            run.wait()
            return _first_parse_events(target)

    names, _ = first_run_of("first")
    assert "PartialParsingEnabled" not in names and kept.exists()  # none saved: full parse
    names, enabled = first_run_of("second")
    assert "UnableToPartialParse" not in names
    assert "0 files deleted, 0 files added, 0 files changed" in enabled

    # A stale project parse (made under other --vars) costs one data directory a full parse,
    # which renews it for the next.
    other = dbt_resource().cli(
        ["parse", "--vars", '{"session_anchor_hour": 9}'], target_path=tmp_path / "other"
    )
    other.wait()
    shutil.copyfile(tmp_path / "other" / dbt_lib.PARTIAL_PARSE_FILE, kept)
    names, _ = first_run_of("third")
    assert "UnableToPartialParse" in names
    names, enabled = first_run_of("fourth")
    assert "UnableToPartialParse" not in names
    assert "0 files deleted, 0 files added, 0 files changed" in enabled


def test_saved_parses_are_kept_per_warehouse_kind_and_vars(monkeypatch):
    """dbt re-uses a parse only under the profile target and --vars it was made with: a data
    directory rebuilt under the other kind, or a run under another session anchor, keeps its
    own instead of replacing (and spoiling) the other's."""
    import mkt_platform.lib.dbt as dbt_lib

    kept = set()
    for kind, anchor in [("duckdb", "8"), ("ducklake", "8"), ("duckdb", "9")]:
        monkeypatch.setenv("MKT_WAREHOUSE", kind)
        monkeypatch.setenv("MKT_SESSION_ANCHOR_HOUR", anchor)
        project, cache = dbt_lib.project_parse(), dbt_lib.partial_parse_cache()
        assert project.name == cache.name and f".{kind}." in project.name
        kept.add(project.name)
    assert len(kept) == 3


@pytest.mark.slow
def test_a_command_after_the_preparse_runs_on_its_manifest_without_parsing(data_dir):
    """The code server's forkserver parses the project once (``dbt_in_process.preparse``) for
    the runs it forks: a process's first dbt command under the same project, profiles,
    ``--vars`` and warehouse kind runs on that manifest and parses nothing (dbt's log has
    none of its parse events); the window still reaches the compiled SQL (read when a node
    executes), and the session it builds from Binance's real BTCUSDT klines is the one a
    command that parses builds. The manifest is given once (dbt compiles into it), and never
    to a command under other ``--vars``. The parse writes nothing of the data directory nor
    of the project (only a temporary folder)."""
    from mkt_platform.lib import dbt_in_process
    from mkt_platform.lib.dbt import dbt_vars_json

    for day_number in (19362, 19363):  # 2023-01-05 and -06: the session of 01-05 08:00
        write_day(
            datetime.fromtimestamp(day_number * 86_400, UTC).date().isoformat(),
            day_of_btc(day_number),
        )

    def files() -> set[tuple[str, float]]:
        """The data directory's and the project's files (but the folders other tests' dbt
        commands write into meanwhile), with their modification times."""
        roots = [data_dir] + [
            p for p in DBT_PROJECT_DIR.iterdir() if p.name not in ("target", "logs")
        ]
        found = [p for root in roots for p in (root, *root.rglob("*"))]
        return {(str(p), p.stat().st_mtime) for p in found}

    before = files()
    dbt_in_process.preparse()
    assert files() == before
    key, manifest = dbt_in_process._preparsed
    assert "model.mkt_platform.session_ohlc_daily" in manifest.nodes
    env = {"DBT_PROJECT_DIR": str(DBT_PROJECT_DIR), "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR)}
    other_vars = ["dbt", "build", "--vars", '{"session_anchor_hour": 9, "session_weekday": 5}']
    assert dbt_in_process._take_parse(other_vars, env) is None
    assert dbt_in_process._preparsed == (key, manifest)  # still there for a matching command

    window = dg.TimeWindow(datetime(2023, 1, 5, 8, tzinfo=UTC), datetime(2023, 1, 6, 8, tzinfo=UTC))
    build = ["build", "--vars", dbt_vars_json(), "--select", "+session_ohlc_daily"]
    build += ["--exclude-resource-type", "unit_test"]
    sessions = "select * from marts.session_ohlc_daily order by all"
    built = []
    for _ in range(2):  # on the preparsed manifest, then parsing as before
        with environment(dbt_window_env(window)):
            command = dbt(*build)
        assert command.is_successful()
        names = {
            json.loads(line)["info"]["name"] for line in (command.target_path / "dbt.log").open()
        }
        assert "2023-01-05T08:00:00+00:00" in compiled_sql(
            command.target_path, "session_ohlc_daily"
        )
        with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
            built.append((names, con.execute(sessions).fetchall()))
    (preparsed_names, preparsed_rows), (parsed_names, parsed_rows) = built
    assert dbt_in_process._preparsed is None  # given once
    # dbt's parse, full or partial, starts by checking its saved parse against the vars
    parse_events = {"StateCheckVarsHash", "PartialParsingEnabled", "UnableToPartialParse"}
    assert "StateCheckVarsHash" in parsed_names
    assert not preparsed_names & parse_events
    assert len(preparsed_rows) == 1 and preparsed_rows == parsed_rows
