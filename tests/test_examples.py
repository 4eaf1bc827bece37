"""Every example runs, as its docstring says, and does what it claims.

An example's docstring names the command that runs it (``Run:``, and ``Or:`` for a second
server) and what to try then (``Then:``, curl commands against ``localhost:8000``). The tests
run exactly those commands, on a free port instead of 8000, and send the ``Then:`` requests.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from tests.conftest import ROOT, free_port
from tests.integration.servers import Server, serve

EXAMPLES = ROOT / "examples"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"

# Served examples: a request to send and the route template the metrics must name.
SERVED = {
    "fastapi_app.py": ("/items/3", "/items/{item_id}"),
    "starlette_app.py": ("/users/ann", "/users/{name}"),
    "litestar_app.py": ("/orders/7", "/orders/{order_id}"),
    "flask_app.py": ("/items/3", "/items/<int:item_id>"),
    "wsgi_app.py": ("/hello/ann", "/hello/{name}"),
    "django_project": ("/polls/3/", "/polls/<int:question_id>/"),
}

# Which test exercises each entry of examples/: a new example fails
# test_every_example_is_exercised until it is added here (and tested).
EXERCISED_BY = {
    **dict.fromkeys(SERVED, "test_served_example"),
    "gunicorn_conf.py": "test_gunicorn_workers_add_up",
    "background_job.py": "test_background_job_writes_its_profile",
    "stack": "tests/dashboards/test_stack.py",
}


def docstring(example: str) -> str:
    path = EXAMPLES / example
    return (path / "__init__.py" if path.is_dir() else path).read_text()


def commands(example: str, label: str = "Run|Or") -> list[list[str]]:
    """The commands on the docstring's ``Run:`` (and ``Or:``) lines, as argv lists."""
    lines = re.findall(rf"^(?:{label}):\s+(.+)$", docstring(example), flags=re.M)
    return [shlex.split(line) for line in lines]


def on_port(argv: list[str], port: int) -> list[str]:
    """*argv* serving on 127.0.0.1:*port* rather than the servers' default, 8000."""
    if argv[0] == "uvicorn":
        return [*argv, "--host", "127.0.0.1", "--port", str(port)]
    if argv[0] == "gunicorn":
        return [*argv, "--bind", f"127.0.0.1:{port}"]
    raise AssertionError(f"no server in {argv}")


def then_requests(example: str) -> list[tuple[str, dict[str, str]]]:
    """The path and headers of every curl command on the docstring's ``Then:`` line."""
    (line,) = re.findall(r"^Then:\s+(.+)$", docstring(example), flags=re.M)
    requests = []
    for command in line.split(";"):
        argv = shlex.split(command)
        assert argv[0] == "curl", command
        headers, path = {}, None
        for flag, value in itertools.pairwise(argv):
            if flag == "-H":
                name, _, header = value.partition(":")
                headers[name] = header.strip()
            elif value.startswith("localhost:8000/"):
                path = value.removeprefix("localhost:8000")
        assert path, command
        requests.append((path, headers))
    return requests


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def access_lines(server: Server) -> list[dict[str, object]]:
    return [r for r in json_lines(server.stdout) if r.get("logger") == "obs.access"]


def test_every_example_is_exercised() -> None:
    present = {p.name for p in EXAMPLES.iterdir() if not p.name.startswith((".", "__"))}
    assert present == set(EXERCISED_BY), "add the example to EXERCISED_BY, with a test"
    for example, test in EXERCISED_BY.items():
        assert test.startswith("tests/") or test in globals(), (example, test)


@pytest.mark.parametrize("example", sorted(set(EXERCISED_BY) - {"stack"}))
def test_every_example_says_what_it_shows_and_how_to_run_it(example: str) -> None:
    text = docstring(example)
    assert text.startswith('"""'), "a module docstring first"
    assert len(commands(example, "Run")) == 1
    assert re.search(r"^Then:\s+\S", text, flags=re.M)


@pytest.mark.parametrize(
    ("example", "argv"),
    [
        pytest.param(example, argv, id=f"{example}-{argv[0]}")
        for example in sorted(SERVED)
        for argv in commands(example)
    ],
)
def test_served_example(example: str, argv: list[str]) -> None:
    port = free_port()
    path, template = SERVED[example]
    with serve(on_port(argv, port), port, cwd=ROOT) as server:
        for then_path, headers in then_requests(example):
            response = httpx.get(server.base_url + then_path, headers=headers, timeout=10)
            assert response.status_code == 200, then_path
        response = httpx.get(server.base_url + path, timeout=10)
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        metrics = httpx.get(server.base_url + "/metrics", timeout=10).text
        assert f'http_route="{template}"' in metrics
        server.stop()
    access = {str(a["request_id"]): (a["path"], a["http_route"]) for a in access_lines(server)}
    assert access[request_id] == (path, template)  # and every stdout line is JSON


def test_gunicorn_workers_add_up(tmp_path: Path) -> None:
    (argv,) = commands("gunicorn_conf.py")
    assert argv[:3] == ["gunicorn", "-c", "examples/gunicorn_conf.py"]
    port = free_port()
    directory = tmp_path / "multiproc"  # as docs/multiprocess.md allows, to look inside it
    paths = [f"/items/{i}" for i in range(300)]  # 101 found, 199 not
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory)}
    with serve(on_port(argv, port), port, cwd=ROOT, env=env) as server:
        for then_path, headers in then_requests("gunicorn_conf.py"):
            response = httpx.get(server.base_url + then_path, headers=headers, timeout=10)
            assert response.status_code == 200, then_path
        # Workers load the app after the fork: until two of them serve, one may take it all.
        deadline = time.monotonic() + 30
        while len(list(directory.glob("histogram_*.db"))) < 2 and time.monotonic() < deadline:
            _drive(server.base_url, ["/warm-up"] * 12, clients=6)  # 404s of no route under test
        sent = dict(_drive(server.base_url, paths, clients=6))
        time.sleep(1.5)  # each worker writes its exemplars at most once a second
        scrape = httpx.get(f"{server.base_url}/metrics", headers={"accept": OPENMETRICS})
        families = {f.name: f for f in text_string_to_metric_families(scrape.text)}
        histogram_files = list(directory.glob("histogram_*.db"))
        server.stop()

    samples = [
        s
        for s in families["http_server_request_duration_seconds"].samples
        if s.labels["http_route"] == "/items/<int:item_id>"
    ]
    counts = [s for s in samples if s.name.endswith("_count")]
    by_status = Counter({s.labels["http_response_status_code"]: int(s.value) for s in counts})
    assert by_status == {"200": 101 + 1, "404": 199}  # and the Then: request
    assert len(histogram_files) >= 2, "the requests were served by several workers"
    pids = {s.labels["pid"] for s in families["process_cpu_seconds"].samples}
    assert len(pids) == 3 + 1  # workers = 3, and the master
    exemplar_ids = {s.exemplar.labels["request_id"] for s in samples if s.exemplar}
    assert exemplar_ids & set(sent), "exemplars carry the request ids the clients got"
    assert exemplar_ids <= {*sent, *(str(a["request_id"]) for a in access_lines(server))}

    records = json_lines(server.stdout)  # gunicorn's own lines are JSON too
    ready = {f"worker {pid} ready" for pid in pids} & {r["event"] for r in records}
    assert len(ready) == 3, "the configuration's own post_fork hook ran in every worker"
    statuses = Counter(r["status"] for r in access_lines(server) if r["request_id"] in sent)
    assert statuses == {200: 101, 404: 199}


def _drive(base_url: str, paths: list[str], clients: int) -> list[tuple[str, str]]:
    """GET every path from a few parallel clients; (request id, path) for each."""

    def run(chunk: list[str]) -> list[tuple[str, str]]:
        with httpx.Client(base_url=base_url, timeout=10) as client:
            return [(client.get(path).headers["x-request-id"], path) for path in chunk]

    chunks = [paths[i::clients] for i in range(clients)]
    with ThreadPoolExecutor(clients) as pool:
        return [row for rows in pool.map(run, chunks) for row in rows]


def test_background_job_writes_its_profile(tmp_path: Path) -> None:
    (argv,) = commands("background_job.py")
    assert argv[0] == "python"
    # Run from an empty directory, so that ./profiles is the job's own.
    script = ROOT / argv[1]
    done = subprocess.run(
        [sys.executable, str(script), *argv[2:]],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = json_lines(done.stdout)  # every line is JSON
    assert [r["event"] for r in records] == ["report started", "report finished", "profile written"]
    assert all(r["service"] == "nightly-report" for r in records)

    html = sorted((tmp_path / "profiles").glob("nightly-report-*.html"))
    speedscope = sorted((tmp_path / "profiles").glob("nightly-report-*.speedscope.json"))
    assert len(html) == len(speedscope) == 1
    written = records[-1]  # the paths the job logged, relative to its working directory
    assert tmp_path / str(written["html"]) == html[0]
    assert tmp_path / str(written["speedscope"]) == speedscope[0]
    frames = json.loads(speedscope[0].read_text())["shared"]["frames"]
    assert "checksum_orders" in {frame["name"] for frame in frames}  # the job's hot function
    assert "checksum_orders" in html[0].read_text()
