"""The deployment's UI proxy (issue 12, fault 8): nginx with deploy/nginx/ui.conf.template in
front of a real ``dagster-webserver``, both run natively (Debian's nginx; no Docker engine).

Dagster's webserver runs GraphQL mutations sent as GET: ``curl -G .../graphql -H 'Origin:
http://evil.example' --data-urlencode 'query=mutation { deleteRun(runId: "...") ... }'``
deleted a run, so any web page open in a browser on the host could. Through the proxy, every
request needs a password, GraphQL takes only POSTed JSON, and a request stating another site
as its origin is refused; the UI itself works.
"""

from __future__ import annotations

import getpass
import os
import shutil
import string
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

from tests.conftest import REPO, instance_of
from tests.test_deployment import compose_config, free_port, wait_for

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
USER, PASSWORD = "trader", "correct horse battery staple"
DELETE = 'mutation { deleteRun(runId: "%s") { __typename } }'
RUN_QUERY = '{ runOrError(runId: "%s") { __typename } }'


def render(template: Path, values: dict[str, str]) -> str:
    """What the nginx image's template step does: ``${NAME}`` of the given names filled in,
    every other ``$`` (nginx's own variables) left alone."""
    return string.Template(template.read_text()).safe_substitute(values)


@pytest.fixture
def proxied_ui(tmp_path) -> Iterator[tuple[str, str]]:
    """A webserver on the embedded instance with one run in it, and nginx in front of it.
    Yields the proxy's URL and the run's id."""
    if not os.path.exists(NGINX):
        pytest.skip("nginx is not installed (.ci/run installs Debian's nginx-light)")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "mkt_platform" / "dagster.yaml", home / "dagster.yaml")
    run_id = str(uuid.uuid4())
    with instance_of(home) as instance:
        instance.add_run(
            DagsterRun(job_name="kept", run_id=run_id, status=DagsterRunStatus.SUCCESS)
        )

    web_port, proxy_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "MKT_"))}
    env |= {"DAGSTER_HOME": str(home), "MKT_DATA_DIR": str(tmp_path / "data")}
    webserver = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml",
         "-h", "127.0.0.1", "-p", str(web_port)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    hashed = subprocess.run(
        ["openssl", "passwd", "-6", PASSWORD], capture_output=True, text=True, check=True
    ).stdout.strip()
    (tmp_path / "ui.htpasswd").write_text(f"{USER}:{hashed}\n")
    server = render(
        REPO / "deploy/nginx/ui.conf.template",
        {
            "MKT_PROXY_PORT": f"127.0.0.1:{proxy_port}",
            "MKT_UI_HTPASSWD": str(tmp_path / "ui.htpasswd"),
            "DAGSTER_WEBSERVER_UPSTREAM": f"127.0.0.1:{web_port}",
        },
    )
    temp = tmp_path / "nginx"
    temp.mkdir()
    (tmp_path / "nginx.conf").write_text(
        # Workers as this user: pytest's folders are private to it (the image runs as nginx).
        f"user {getpass.getuser()};\n"
        f"pid {temp}/nginx.pid;\nerror_log {temp}/error.log;\nevents {{}}\nhttp {{\n"
        f"access_log off;\nclient_body_temp_path {temp};\nproxy_temp_path {temp};\n"
        f"fastcgi_temp_path {temp};\nuwsgi_temp_path {temp};\nscgi_temp_path {temp};\n"
        f"{server}\n}}\n"
    )
    check = subprocess.run(
        [NGINX, "-t", "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    proxy = subprocess.Popen(
        [NGINX, "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{proxy_port}"
    try:
        wait_for(
            "the UI through the proxy",
            lambda: httpx.get(f"{url}/server_info", auth=(USER, PASSWORD)).status_code == 200,
            180,
            webserver,
        )
        yield url, run_id
    finally:
        proxy.terminate()
        os.killpg(webserver.pid, 9)
        proxy.wait(10)
        webserver.wait(10)


def run_exists(url: str, run_id: str) -> bool:
    answer = httpx.post(
        f"{url}/graphql", json={"query": RUN_QUERY % run_id}, auth=(USER, PASSWORD)
    ).json()
    return answer["data"]["runOrError"]["__typename"] == "Run"


@pytest.mark.slow
def test_the_ui_proxy_requires_a_password_and_refuses_forgery(proxied_ui):
    url, run_id = proxied_ui
    auth = (USER, PASSWORD)
    # The UI works through the proxy: its page, and GraphQL as the UI sends it.
    page = httpx.get(f"{url}/", auth=auth)
    assert page.status_code == 200 and "<html" in page.text.lower()
    same_site = {"Origin": url, "Content-Type": "application/json"}
    assert run_exists(url, run_id)
    assert httpx.post(f"{url}/graphql", json={"query": RUN_QUERY % run_id}, auth=auth,
                      headers=same_site).status_code == 200  # fmt: skip

    # No password, or a wrong one: refused.
    assert httpx.get(f"{url}/").status_code == 401
    assert httpx.get(f"{url}/", auth=(USER, "wrong")).status_code == 401

    # The reported attack: a mutation sent as GET from another site, with the browser's
    # cached credentials. And its variants: as GET from this site, as a form POST, as a
    # JSON POST stating another origin, or another referer.
    evil = "http://evil.example"
    attacks = [
        httpx.get(f"{url}/graphql", params={"query": DELETE % run_id}, auth=auth,
                  headers={"Origin": evil}),
        httpx.get(f"{url}/graphql", params={"query": DELETE % run_id}, auth=auth),
        httpx.post(f"{url}/graphql", data={"query": DELETE % run_id}, auth=auth),
        httpx.post(f"{url}/graphql", json={"query": DELETE % run_id}, auth=auth,
                   headers={"Origin": evil}),
        httpx.post(f"{url}/graphql", json={"query": DELETE % run_id}, auth=auth,
                   headers={"Referer": f"{evil}/page"}),
        httpx.post(f"{url}/graphql", json={"query": DELETE % run_id}, auth=auth,
                   headers={"Origin": url.replace("127.0.0.1", "127.0.0.1.evil.example")}),
        httpx.request("DELETE", f"{url}/graphql", auth=auth),
    ]  # fmt: skip
    assert [a.status_code for a in attacks] == [403, 405, 405, 403, 403, 403, 405]
    assert run_exists(url, run_id), "no attack reached the webserver"

    # The same mutation from the UI's own origin goes through: the proxy refuses forgery,
    # not the API.
    done = httpx.post(f"{url}/graphql", json={"query": DELETE % run_id}, auth=auth,
                      headers=same_site)  # fmt: skip
    assert done.status_code == 200 and "DeletePipelineRunSuccess" in done.text
    assert not run_exists(url, run_id)


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_compose_publishes_the_ui_only_through_the_proxy(tmp_path):
    services = compose_config(tmp_path)["services"]
    assert "ports" not in services["webserver"]
    proxy = services["proxy"]
    assert proxy["ports"] == ["127.0.0.1:3000:3000/tcp"] or proxy["ports"][0].startswith(
        "127.0.0.1:3000:3000"
    )
    mounts = {m["target"]: m for m in proxy["volumes"]}
    template = mounts["/etc/nginx/templates/default.conf.template"]
    assert template["source"].endswith("deploy/nginx/ui.conf.template") and template["read_only"]
    assert mounts["/etc/nginx/ui.htpasswd"]["read_only"]
    assert proxy["environment"]["DAGSTER_WEBSERVER_UPSTREAM"] == "webserver:3000"
