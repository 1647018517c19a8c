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
# install takes that version from pip.
UV_VERSION = $(shell sed -n '/^name = "uv"$$/{n;s/^version = "\(.*\)"$$/\1/p;}' uv.lock)

$(VENV)/.installed: pyproject.toml uv.lock
	test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install -q uv==$(UV_VERSION); }
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync -q --locked --extra dev
	touch $@

install: $(VENV)/.installed

# The main job on recorded real data, offline: the Deribit option day of the recordings, then
# a month of Binance, Hyperliquid candles and funding.
demo: install
	$(BIN)/mkt-platform materialize --start 2022-01-01 --end 2022-01-01 --replay $(SHARED_DATA)
	$(BIN)/mkt-platform materialize --start 2023-04-28 --end 2023-05-25 --replay $(SHARED_DATA)

# The suite on every core (pytest-xdist), each test module on one worker so that its
# module-scoped fixtures are built once, in collection order (tests/conftest.py puts the
# longest module first).
test: install
	$(BIN)/ruff check mkt_platform tests benchmarks
	$(BIN)/pytest -n auto --dist loadscope --no-loadscope-reorder

benchmark: install
	$(BIN)/python benchmarks/backfill.py --replay $(SHARED_DATA)
	$(BIN)/python benchmarks/deribit_ingest.py
	$(BIN)/python benchmarks/options_marts.py

# The dbt docs of the local warehouse (every description, and the column types of what has
# been built), served on http://127.0.0.1:8080 until Ctrl-C. No Docker needed.
MKT_DATA_DIR ?= $(CURDIR)/data
docs: install
	mkdir -p $(MKT_DATA_DIR)
	cd dbt_project && MKT_DATA_DIR=$(MKT_DATA_DIR) ../$(BIN)/dbt docs generate --profiles-dir .
	cd dbt_project && MKT_DATA_DIR=$(MKT_DATA_DIR) ../$(BIN)/dbt docs serve --profiles-dir . --no-browser --port 8080
