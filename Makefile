# The two commands of the README. Each installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED_DATA ?= ../shared/data

.PHONY: install demo test lint benchmark docs

# Every package at its version in uv.lock, the versions the tests passed with; the sync also
# removes what the lock does not list. After a change of the dependencies in pyproject.toml,
# `.venv/bin/uv lock` updates the lock (`--upgrade-package NAME` moves one package): `--locked`
# refuses a lock that no longer matches pyproject.toml. uv itself is in the lock; the first
# install takes that version from pip. --compile-bytecode writes every package's .pyc once:
# where PYTHONDONTWRITEBYTECODE is set, Python would otherwise compile Dagster and dbt again in
# every process it starts (about 2 CPU-s per process on the development machine). The
# project's own package is installed editable, which uv does not compile: compileall does
# (0.15 CPU-s per process; a source changed since is compiled again in memory, as before).
UV_VERSION = $(shell sed -n '/^name = "uv"$$/{n;s/^version = "\(.*\)"$$/\1/p;}' uv.lock)

$(VENV)/.installed: pyproject.toml uv.lock
	test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install -q uv==$(UV_VERSION); }
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync -q --locked --extra dev --compile-bytecode
	$(BIN)/python -m compileall -q mkt_platform
	touch $@

install: $(VENV)/.installed

# The main job on recorded real data, offline, each dataset asked only for days the recordings
# hold (../shared/data/SOURCES.md): three days of Binance 1m klines (that recording ends on
# 2023-05-01 21:01); the two recorded Deribit option days (2022-01-01 from QuantLet, 2024-04-01
# from Amberdata) with their DVOL candles; four weeks of 2023 Binance 1h klines with the
# Hyperliquid kPEPE candles (2023-05-21/22) and BTC funding (from 2023-05-12) that fall in
# them; SPY's trading day 2025-08-29 from Polygon with VIX (SYNTHETIC: no recording), its news
# (SYNTHETIC) and the SPY options near the open (the band widened to 4.5 % and 4 days, so
# that the ten recorded contracts are among those chosen); then five weeks of 2025 with Binance's and Hyperliquid's BTC, ETH, SOL (and HYPE) 1h
# candles and funding and DVOL, whose summary ends with the volatility table (the 30-session
# windows are complete from 2025-07-01); and the HTML report of the charts.
# tests/test_cli.py runs the last materialize line and holds the README's sample output to it.
demo: install
	$(BIN)/mkt-platform materialize --start 2023-04-28 --end 2023-04-30 --only binance_klines_1m --replay $(SHARED_DATA)
	$(BIN)/mkt-platform materialize --start 2022-01-01 --end 2022-01-01 --only deribit_option_trades,deribit_volatility_index --replay $(SHARED_DATA)
	$(BIN)/mkt-platform materialize --start 2024-04-01 --end 2024-04-01 --only deribit_option_trades,deribit_volatility_index --replay $(SHARED_DATA)
	$(BIN)/mkt-platform materialize --start 2023-04-28 --end 2023-05-25 --only binance_klines_1h,hyperliquid_candles_1h,hyperliquid_funding_rates --replay $(SHARED_DATA)
	MKT_POLYGON_OPTIONS_BAND_PCT=4.5 MKT_POLYGON_OPTIONS_EXPIRY_DAYS=4 MKT_POLYGON_OPTIONS_MAX_CONTRACTS=200 $(BIN)/mkt-platform materialize --start 2025-08-29 --end 2025-08-29 --only polygon_spy_aggs_1m,polygon_vix_aggs_1m,polygon_spy_options_contracts,polygon_spy_options_aggs_1m,polygon_news --replay $(SHARED_DATA)
	$(BIN)/mkt-platform materialize --start 2025-06-01 --end 2025-07-05 --only binance_klines_1h,hyperliquid_candles_1h,hyperliquid_funding_rates,deribit_volatility_index --replay $(SHARED_DATA)
	$(BIN)/mkt-platform report --start 2024-04-01 --end 2025-07-05

# The suite on every core (pytest-xdist), each test module on one worker so that its
# module-scoped fixtures are built once, in collection order (tests/conftest.py puts the
# longest module first).
test: install
	$(BIN)/ruff check mkt_platform tests benchmarks
	$(BIN)/pytest -n auto --dist loadscope --no-loadscope-reorder --durations=25

benchmark: install
	$(BIN)/python benchmarks/backfill.py --replay $(SHARED_DATA)
	$(BIN)/python benchmarks/steady_state.py --replay $(SHARED_DATA)
	$(BIN)/python benchmarks/ui_run_start.py --replay $(SHARED_DATA)
	$(BIN)/python benchmarks/definitions_import.py
	$(BIN)/python benchmarks/deribit_ingest.py
	$(BIN)/python benchmarks/options_marts.py
	$(BIN)/python benchmarks/api_latency.py --replay $(SHARED_DATA)
	$(BIN)/python benchmarks/capture_flood.py

# The dbt docs of the local warehouse (every description, and the column types of what has
# been built), served on http://127.0.0.1:8080 until Ctrl-C. No Docker needed.
MKT_DATA_DIR ?= $(CURDIR)/data
docs: install
	mkdir -p $(MKT_DATA_DIR)
	cd dbt_project && MKT_DATA_DIR=$(MKT_DATA_DIR) ../$(BIN)/dbt docs generate --profiles-dir . \
	  --vars "$$(../$(BIN)/python -c 'from mkt_platform.lib.dbt import dbt_vars_json; print(dbt_vars_json())')"
	cd dbt_project && MKT_DATA_DIR=$(MKT_DATA_DIR) ../$(BIN)/dbt docs serve --profiles-dir . --no-browser --port 8080
