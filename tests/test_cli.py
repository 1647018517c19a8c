"""``mkt-platform materialize`` as a user sees it.

The last materialize command of ``make demo`` runs once here, as make runs it from the repository root:
its output is held to the README's sample (run ids, seconds, ports and the data dir aside),
each step of its plan is one line, and dbt's lines go to the log file only. A second, short
run over days the 1m recording does not hold shows the warnings grouped (one line per
dataset and range) and, with ``--verbose``, dbt's and Dagster's lines as they come.
"""

from __future__ import annotations

import io
import os
import re
import shlex
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from mkt_platform import cli
from mkt_platform.replay.server import PLATFORM_BASE_URLS
from tests.conftest import REPO, SHARED_DATA

pytestmark = pytest.mark.slow

#: Marks the README's sample output: the fenced block after it.
README_MARK = "<!-- make demo's last materialize line and its output, held to the real output by tests/test_cli.py -->"


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str
    data_dir: Path


def demo_lines() -> list[str]:
    """The recipe lines of ``make demo``, with ``$(BIN)`` and ``$(SHARED_DATA)`` as make
    expands them by default (from the repository root)."""
    recipe = re.search(r"^demo:.*\n((?:\t.*\n)+)", (REPO / "Makefile").read_text(), re.M)
    assert recipe, "no demo target in the Makefile"
    shared = os.path.relpath(SHARED_DATA, REPO)
    return [
        line.strip().replace("$(BIN)", ".venv/bin").replace("$(SHARED_DATA)", shared)
        for line in recipe.group(1).splitlines()
    ]


def readme_sample() -> list[str]:
    text = (REPO / "README.md").read_text()
    assert README_MARK in text, "the README's sample output lost its marker"
    block = re.search(r"```\n(.*?)```", text[text.index(README_MARK) :], re.S)
    assert block
    return block.group(1).splitlines()


def normalized(line: str, data_dir: Path | None = None) -> str:
    """``line`` without what changes from run to run: run ids, seconds, ports, the log's
    time stamp, the data dir (shown as ``data``, the default a user has)."""
    if data_dir is not None:
        line = line.replace(str(data_dir), "data")
    line = re.sub(r"\d+\.\d s \(run [0-9a-f]{8}\)", "S s (run ID)", line)
    line = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", line)
    return re.sub(r"materialize-\d{8}T\d{6}Z\.log", "materialize-STAMP.log", line)


class Terminal(io.StringIO):
    """Captured output that says it is a terminal, as a user's is (a pipe gets each step's
    start and end on lines of their own)."""

    def isatty(self) -> bool:
        return True


def run_cli(argv: list[str], data_dir: Path) -> Run:
    """``mkt-platform ARGV`` in this process from the repository root, in an environment
    like a user's (no MKT_ or DAGSTER_ setting but the data dir, output to a terminal),
    which is restored after."""
    with pytest.MonkeyPatch.context() as mp:
        for name in [*PLATFORM_BASE_URLS, "MKT_INSTRUMENTS_FILE", "DAGSTER_HOME"] + [
            k for k in os.environ if k.startswith(("MKT_", "DAGSTER_"))
        ]:
            mp.setenv(name, "")  # so that the undo also removes what the CLI sets
            mp.delenv(name)
        mp.setenv("MKT_DATA_DIR", str(data_dir))
        mp.chdir(REPO)
        out, err = Terminal(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = cli.main(argv)
    return Run(code, out.getvalue(), err.getvalue(), data_dir)


def last_materialize() -> str:
    """The last ``materialize`` line of ``make demo`` (the one after it writes the report)."""
    return [line for line in demo_lines() if " materialize " in line][-1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """The last materialize line of ``make demo`` (five weeks of 2025 sessions with DVOL),
    run once for the module."""
    program, *argv = shlex.split(last_materialize())
    assert program == ".venv/bin/mkt-platform"
    yield run_cli(argv, tmp_path_factory.mktemp("demo") / "data")


def test_the_demo_ends_with_the_report_of_what_it_built() -> None:
    program, command, *_ = shlex.split(demo_lines()[-1])
    assert (program, command) == (".venv/bin/mkt-platform", "report")
    assert demo_lines()[-2] == last_materialize()


def test_the_readme_sample_is_the_demos_real_output(demo: Run) -> None:
    """Guards against the README showing an output the CLI no longer prints (the issue: its
    sample table had drifted). The sample is make's echo of the command, then its output."""
    assert demo.code == 0, demo.out + demo.err
    sample = [normalized(line) for line in readme_sample()]
    real = [normalized(last_materialize())] + [
        normalized(line, demo.data_dir) for line in demo.out.splitlines()
    ]
    assert sample == real, "\n".join(real)


def test_the_demo_says_a_line_per_step_and_nothing_of_dbt(demo: Run) -> None:
    """One line per step of the plan; dbt's lines (about a thousand) only in the log file;
    no Dagster log line and no warning: the demo asks only for what the recordings hold."""
    out = demo.out.splitlines()
    steps = [line for line in out if re.match(r"\[\d/\d\] ", line)]
    # five weeks from 2025-06-01 hold four whole weekly sessions and no monthly one
    assert [re.sub(r":.*", "", s) for s in steps] == [
        "[1/4] raw pulls",
        "[2/4] dbt sessions",
        "[3/4] dbt weekly sessions",
        "[4/4] dbt options and funding",
    ]
    assert all(re.search(r" \.\.\. done in \d+\.\d s \(run [0-9a-f]{8}\)$", s) for s in steps)
    assert demo.err == ""
    assert not [line for line in out if "warning" in line.lower() or " PASS " in line]
    (log,) = re.findall(r"^dbt log:\s+(\S+)$", demo.out, re.M)
    dbt_lines = Path(log).read_text().splitlines()
    # a PASS line per data test (29 since the required columns are contract constraints)
    assert sum(" PASS " in line for line in dbt_lines) > 20
    assert len(out) < 50
    # Only the tables of the marts this run built: no options table (no option day asked);
    # the volatility table is the last
    assert "Daily sessions (marts.session_ohlc_daily)" in demo.out
    assert "Options (" not in demo.out and "Smile (" not in demo.out
    tables = [line for line in out if re.match(r"^[A-Z][a-z]+.* \(marts\.", line)]
    assert tables[-1].startswith("Volatility (marts.volatility_risk_premium_daily")


def test_warnings_are_grouped_by_dataset_and_range_and_verbose_shows_dbt(tmp_path: Path) -> None:
    """Days the 1m recording does not hold (it ends 2023-05-01 21:01): a warning line per
    dataset and message with its days as a range, not a line per day. ``--verbose`` shows
    dbt's lines (here of the funding marts) and Dagster's log as they come."""
    run = run_cli(
        [
            "materialize",
            "--start",
            "2023-04-30",
            "--end",
            "2023-05-03",
            "--only",
            "binance_klines_1m,hyperliquid_funding_rates",
            "--replay",
            str(SHARED_DATA),
            "--verbose",
        ],
        tmp_path / "data",
    )
    assert run.code == 0, run.out + run.err
    warnings = [line.strip() for line in run.out.splitlines() if "warning:" in line]
    assert warnings == [
        "warning: binance_klines_1m 2023-05-01: 3787 of 4320 candles; missing "
        "{'BTCUSDT': ['21:02-23:59'], 'ETHUSDT': ['21:02-23:59'], 'SOLUSDT': ['21:03-23:59']}",
        "warning: binance_klines_1m 2023-05-02..2023-05-03 (2 partitions): 0 of 4320 candles; "
        "missing {'BTCUSDT': ['00:00-23:59'], 'ETHUSDT': ['00:00-23:59'], "
        "'SOLUSDT': ['00:00-23:59']}",
    ]
    # --verbose: dbt's own lines on the terminal (and still in the log file) ...
    assert re.search(r"^.* PASS .*funding_rates_daily", run.out, re.M), run.out[-3000:]
    (log,) = re.findall(r"^dbt log:\s+(\S+)$", run.out, re.M)
    assert " PASS " in Path(log).read_text()
    # ... Dagster's log, each day's warning as it happens ...
    assert run.err.count("binance_klines_1m - 2023-05-0") == 3, run.err[-3000:]
    assert " - INFO - " in run.err
    # ... and each step's outcome on a line of its own, after them.
    assert re.search(r"^\[2/2\] dbt options and funding: done in \d+\.\d s", run.out, re.M)


def test_only_plans_the_datasets_marts_and_what_they_read() -> None:
    """``--only`` narrows the pulls and the dbt models to a dataset's downstream, plus the
    models those read: without another venue's staging view the session candles failed on a
    fresh warehouse (``stg_hyperliquid__candles does not exist``). A dataset no mart reads is
    one raw step over the days asked; a name that is no raw dataset is refused, listing them."""
    from datetime import date

    from mkt_platform.definitions import build_definitions
    from mkt_platform.lib.materialize import DatasetError, plan

    defs = build_definitions()
    graph = defs.resolve_asset_graph()

    def planned(only: list[str]) -> dict[str, tuple[int, list[str]]]:
        steps = plan(defs, date(2023, 5, 1), date(2023, 5, 1), only)
        return {
            s.label: (
                len(s.partition_keys),
                sorted(k.to_user_string() for k in s.selection.resolve(graph)),
            )
            for s in steps
        }

    assert planned(["binance_klines_1h"]) == {
        "raw pulls": (2, ["binance_klines_1h"]),  # the session of 05-01 ends on 05-02
        "dbt sessions": (
            1,
            [
                "int_candles_1h",
                "realized_volatility_daily",
                "realized_volatility_rolling",
                "session_ohlc_daily",
            ],
        ),
    }
    assert planned(["binance_klines_1m"]) == {"raw pulls": (1, ["binance_klines_1m"])}
    # the volatility risk premium joins DVOL and the realized volatility: built only when
    # both datasets are pulled, never by pulling one (which would build the other's marts)
    assert planned(["deribit_volatility_index"]) == {
        "raw pulls": (1, ["deribit_volatility_index"]),
        "dbt options and funding": (1, ["dvol_daily"]),
    }
    both = planned(["binance_klines_1h", "deribit_volatility_index"])
    assert both["dbt options and funding"] == (
        1,
        ["dvol_daily", "volatility_risk_premium_daily"],
    )
    with pytest.raises(
        DatasetError,
        match="not a raw dataset: binance_klines_5m; the raw datasets are binance_klines_1h, binance_klines_1m",
    ):
        planned(["binance_klines_1m", "binance_klines_5m"])
