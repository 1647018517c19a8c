# One image for every service of docker-compose.yml: the project installed with the versions
# of uv.lock (the ones the tests passed with; editable, so the package finds dbt_project/
# beside it), the dbt manifest parsed and the dbt docs generated at
# build time, so no service compiles anything when it starts.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    DAGSTER_HOME=/opt/dagster/home \
    MKT_DATA_DIR=/data \
    UV_PROJECT_ENVIRONMENT=/usr/local

WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY mkt_platform ./mkt_platform
COPY dbt_project ./dbt_project
COPY deploy ./deploy

# uv sync --locked refuses a lock that no longer matches pyproject.toml; into the image's own
# Python (UV_PROJECT_ENVIRONMENT), without the dev extra. The project itself is installed
# editable, which uv does not compile: compileall does (a run pod would compile it at start).
# EXTRAS=k8s adds dagster-k8s, for the Helm deployment's run pods (deploy/k8s/).
ARG EXTRAS=""
RUN pip install "uv==$(sed -n '/^name = "uv"$/{n;s/^version = "\(.*\)"$/\1/p;}' uv.lock)" \
    && uv sync --locked --no-cache --compile-bytecode ${EXTRAS:+--extra "$EXTRAS"} \
    && python -m compileall -q mkt_platform \
    && mkdir -p "$DAGSTER_HOME" /data \
    && cp deploy/dagster.yaml "$DAGSTER_HOME/dagster.yaml"

# The manifest (read by the code server) and dbt's saved parse, parsed as every run parses
# (its --vars: mkt_platform.lib.dbt.parse_project), so that a data directory's first dbt run
# re-uses it instead of parsing the whole project; then the docs site (index.html,
# manifest.json with the compiled SQL, catalog.json, served by the `docs` service), with the
# same --vars, so that it re-uses that parse and keeps it valid. The catalog is built against an empty
# warehouse here: the docs carry every description, and the column types of the relations
# once `make docs` is run against a real warehouse (README, "dbt docs").
RUN mkdir -p /tmp/build && export MKT_DATA_DIR=/tmp/build \
    && python -c "from mkt_platform.lib.dbt import parse_project; parse_project()" \
    && dbt docs generate --project-dir dbt_project --profiles-dir dbt_project \
       --vars "$(python -c 'from mkt_platform.lib.dbt import dbt_vars_json; print(dbt_vars_json())')" \
    && rm -rf /tmp/build dbt_project/logs

EXPOSE 3000 4000 8000 8080
