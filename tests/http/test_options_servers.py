"""Each option through a real server: uvicorn (ASGI), gunicorn (Flask) and hypercorn, on
127.0.0.1, configured the way users do (middleware arguments or ``OBS_*`` variables)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from obs.metrics import ACTIVE_REQUESTS, DURATION_BUCKETS, REQUEST_DURATION
from tests.conftest import free_port
from tests.integration.servers import ROOT, serve

APPS = Path(__file__).resolve().parent / "apps"


def uvicorn(port: int, module: str = "options_asgi_app") -> list[str]:
    return [
        "uvicorn",
        f"{module}:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
    ]


def samples(base_url: str) -> list[Any]:
    text = httpx.get(base_url + "/metrics", timeout=5).text
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def counts(base_url: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for s in samples(base_url)
        if s.name == REQUEST_DURATION + "_count"
    }


def start(options: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> Any:
    port = free_port()
    full_env = {"OPTIONS_TEST": json.dumps(options or {}), **(env or {})}
    return serve(uvicorn(port), port, cwd=APPS, env=full_env, ready_path="/items/ready")


def test_metrics_scrape_is_neither_counted_nor_gauged_by_default() -> None:
    with start() as server:
        for _ in range(5):
            httpx.get(server.base_url + "/metrics", timeout=5)
        httpx.get(server.base_url + "/items/1", timeout=5)
        found = samples(server.base_url)  # itself a scrape, in flight while it renders
        routes = {s.labels.get("http_route") for s in found if s.name.startswith(REQUEST_DURATION)}
        assert "/metrics" not in routes and "/items/{item_id}" in routes
        gauge = [s.value for s in found if s.name == ACTIVE_REQUESTS]
        assert gauge == [0.0]


def test_metrics_exclusion_argument_exact_and_prefix() -> None:
    options = {"metrics_exclude_paths": ["/items/1", "/static/*"]}
    with start(options) as server:
        for path in ("/items/1", "/items/2", "/static/a.js", "/static/b.css", "/metrics"):
            httpx.get(server.base_url + path, timeout=5)
        by_route = {dict(k)["http_route"]: v for k, v in counts(server.base_url).items()}
        # /items/2 counted, /items/1 and /static/* not; /metrics is counted once the default
        # list is replaced (each scrape before this one).
        assert by_route["/items/{item_id}"] == 2.0  # /items/2 and the ready probe
        assert "/static/{name}" not in by_route
        assert by_route.get("/metrics", 0) >= 1


def test_metrics_exclusion_variable_and_access_log_exclusion_are_separate() -> None:
    env = {"OBS_METRICS_EXCLUDE_PATHS": "/items/*", "OBS_EXCLUDE_PATHS": "/static/*"}
    with start(env=env) as server:
        httpx.get(server.base_url + "/items/7", timeout=5)
        httpx.get(server.base_url + "/static/x", timeout=5)
        by_route = {dict(k)["http_route"]: v for k, v in counts(server.base_url).items()}
        server.stop()
    assert "/items/{item_id}" not in by_route and by_route["/static/{name}"] == 1.0
    paths = [json.loads(line).get("path") for line in server.lines() if '"request"' in line]
    assert "/items/7" in paths and "/static/x" not in paths  # logged / not logged


def test_duration_buckets_from_the_variable_and_the_argument() -> None:
    def bounds(base_url: str) -> list[str]:
        return sorted(
            {s.labels["le"] for s in samples(base_url) if s.name == REQUEST_DURATION + "_bucket"},
            key=float,
        )

    with start(env={"OBS_DURATION_BUCKETS": "0.1,0.5,2"}) as server:
        assert bounds(server.base_url) == ["0.1", "0.5", "2.0", "+Inf"]
    with start({"duration_buckets": [0.25, 1]}) as server:
        assert bounds(server.base_url) == ["0.25", "1.0", "+Inf"]
    with start() as server:
        assert len(bounds(server.base_url)) == len(DURATION_BUCKETS) + 1


def test_request_id_header_generator_and_validator() -> None:
    env = {"OBS_REQUEST_ID_HEADER": "X-Correlation-ID"}
    with start({"generator": True, "validator": True}, env) as server:
        kept = httpx.get(server.base_url + "/items/1", headers={"X-Correlation-ID": "ok-1"})
        refused = httpx.get(server.base_url + "/items/1", headers={"X-Correlation-ID": "bad-1"})
        fresh = httpx.get(server.base_url + "/items/1")
        failed = httpx.get(server.base_url + "/boom", headers={"X-Correlation-ID": "ok-500"})
    assert kept.headers["x-correlation-id"] == "ok-1"
    assert refused.headers["x-correlation-id"].startswith("gen-")
    assert fresh.headers["x-correlation-id"].startswith("gen-")
    assert "x-request-id" not in fresh.headers
    assert failed.status_code == 500 and failed.headers["x-correlation-id"] == "ok-500"


def test_extra_labels_from_a_header_are_bounded_by_the_allow_list() -> None:
    with start({"tenant_label": ["acme", "globex"]}) as server:
        for tenant in ("acme", "acme", "globex", "evil-1", "evil-2"):
            httpx.get(server.base_url + "/items/1", headers={"X-Tenant": tenant}, timeout=5)
        tenants = {
            dict(k)["tenant"]: v
            for k, v in counts(server.base_url).items()
            if dict(k)["http_route"] == "/items/{item_id}"
        }
    # Two values outside the list and the readiness probe(s), which had no header: _other.
    assert set(tenants) == {"acme", "globex", "_other"}
    assert (tenants["acme"], tenants["globex"]) == (2.0, 1.0) and tenants["_other"] >= 3.0


def test_options_under_gunicorn_and_flask() -> None:
    port = free_port()
    options = {"metrics_exclude_paths": ["/items/1"], "tenant_label": ["acme"]}
    env = {"OPTIONS_TEST": json.dumps(options), "OBS_REQUEST_ID_HEADER": "X-Correlation-ID"}
    argv = ["gunicorn", "-b", f"127.0.0.1:{port}", "-w", "1", "options_wsgi_app:app"]
    with serve(argv, port, cwd=APPS, env=env, ready_path="/items/ready") as server:
        excluded = httpx.get(server.base_url + "/items/1", headers={"X-Tenant": "acme"})
        counted = httpx.get(server.base_url + "/items/2", headers={"X-Tenant": "acme"})
        found = counts(server.base_url)
    assert excluded.headers["x-correlation-id"] and counted.headers["x-correlation-id"]
    tenants = {
        dict(k)["tenant"]: v
        for k, v in found.items()
        if dict(k)["http_route"] == "/items/<item_id>"
    }
    # /items/2 as acme (/items/1 is excluded), and the readiness probe(s) without a header.
    assert set(tenants) == {"acme", "_other"} and tenants["acme"] == 1.0


def run_server(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {
        **{k: v for k, v in __import__("os").environ.items() if not k.startswith("OBS_")},
        "PYTHONPATH": f"{APPS}:{ROOT / 'src'}",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", *argv], cwd=APPS, env=full_env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


def test_invalid_variable_stops_each_server_with_one_line() -> None:
    line = "OBS_LOG_LEVEL='loud' is invalid; use one of: debug, info, warning, error, critical."
    port = str(free_port())
    servers = {
        "uvicorn": ["uvicorn", "options_asgi_app:app", "--port", port],
        "gunicorn": ["gunicorn", "-b", f"127.0.0.1:{port}", "options_wsgi_app:app"],
        "gunicorn -c obs.gunicorn": [
            "gunicorn", "-c", "python:obs.gunicorn", "-b", f"127.0.0.1:{port}", "options_wsgi_app:app",
        ],
        # hypercorn 0.18 exits 0 after a worker failed (its run() loses the worker's status,
        # hypercorn issue 269): -w 0 serves in the main process, where the status survives.
        "hypercorn -w 0": ["hypercorn", "-w", "0", "-b", f"127.0.0.1:{port}", "options_asgi_app:app"],
        "hypercorn": ["hypercorn", "-b", f"127.0.0.1:{port}", "options_asgi_app:app"],
    }  # fmt: skip
    for name, argv in servers.items():
        proc = run_server(argv, {"OBS_LOG_LEVEL": "loud"})
        assert proc.stderr.count(line) == 1, (name, proc.stderr)
        assert "Traceback" not in proc.stderr + proc.stdout, (name, proc.stderr)
        obs_lines = [x for x in proc.stderr.splitlines() if "OBS_" in x]
        assert obs_lines == [line], (name, proc.stderr)
        if name != "hypercorn":
            assert proc.returncode != 0, (name, proc.returncode)


def test_warn_is_accepted_by_a_real_server() -> None:
    with start(env={"OBS_LOG_LEVEL": "WARN"}) as server:
        response = httpx.get(server.base_url + "/items/1")
        server.stop()
    assert response.status_code == 200
    access = [json.loads(x) for x in server.lines() if '"event":"request"' in x]
    assert access == []  # the 200's access line is info: below warning
