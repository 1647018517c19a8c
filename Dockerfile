# Image of the code server, webserver and daemon: the project installed, the dbt manifest
# parsed at build time so nothing is compiled at start.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY mkt_platform ./mkt_platform
COPY dbt_project ./dbt_project
RUN pip install --no-cache-dir . \
    && dbt parse --project-dir dbt_project --profiles-dir dbt_project
COPY deploy/dagster.yaml deploy/workspace.yaml /opt/dagster/home/
ENV DAGSTER_HOME=/opt/dagster/home MKT_DATA_DIR=/data
