"""Multiprocess metrics under real gunicorn and uvicorn ``--workers``: what several workers, and
several servers' generations, make of one ``PROMETHEUS_MULTIPROC_DIR``."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port
from tests.integration.servers import serve

REQUESTS = 40


def hello_count(text: str, route: str) -> int:
    total = 0
    for family in text_string_to_metric_families(text):
        if family.name == "http_server_request_duration_seconds":
            for sample in family.samples:
                if sample.name.endswith("_count") and sample.labels["http_route"] == route:
                    total += int(sample.value)
    return total


def pids_of(text: str) -> set[str]:
    return {
        sample.labels["pid"]
        for family in text_string_to_metric_families(text)
        if family.name == "process_cpu_seconds"
        for sample in family.samples
    }


SERVERS = {
    "gunicorn": (
        ["gunicorn", "-c", "python:obs.gunicorn", "-w", "2", "--graceful-timeout", "5"],
        "flask",
        "/items/<item_id>",
    ),
    "uvicorn": (["uvicorn", "--workers", "2", "--no-access-log"], "starlette", "/items/{item_id}"),
}


@pytest.mark.slow
@pytest.mark.timeout(90)
@pytest.mark.parametrize("server_name", sorted(SERVERS))
def test_every_worker_serves_the_aggregate_on_the_metrics_port(
    server_name: str, tmp_path: Path
) -> None:
    """``start_metrics_server(port)`` in every worker: all bind it (SO_REUSEPORT), none dies,
    and whichever answers a scrape serves the sum of all workers' requests."""
    argv, app, route = SERVERS[server_name]
    port, metrics_port = free_port(), free_port()
    directory = tmp_path / "multiproc"
    directory.mkdir(mode=0o700)
    if server_name == "gunicorn":
        argv = [*argv, "-b", f"127.0.0.1:{port}", "metrics_port_app:app"]
    else:
        argv = [*argv, "--host", "127.0.0.1", "--port", str(port), "metrics_port_app:app"]
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "METRICS_APP": app,
        "METRICS_PORT": str(metrics_port),
        "OBS_ACCESS_LOG": "false",
    }
    with serve(argv, port, env=env, ready_path="/items/0") as server:
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        # Requests on new connections until both workers have served some (each is then in the
        # scrape's process metrics, as is gunicorn's master); uvicorn starts them one by one.
        expected_pids = 3 if server_name == "gunicorn" else 2
        sent, deadline = 1, time.monotonic() + 30  # the /items/0 readiness probe
        while len(pids_of(httpx.get(metrics_url, timeout=5).text)) < expected_pids:
            assert time.monotonic() < deadline, "not every worker came up"
            assert server.process.poll() is None, "the server exited"
            assert httpx.get(f"{server.base_url}/items/{sent}", timeout=5).status_code == 200
            sent += 1
            time.sleep(0.1)
        with httpx.Client(base_url=server.base_url, timeout=5) as client:
            for i in range(REQUESTS):
                assert client.get(f"/items/{i}").status_code == 200
        sent += REQUESTS
        time.sleep(0.2)
        # Several scrapes, new connections each: the kernel spreads them over the workers,
        # and every one of them sees every worker's requests.
        answered = [hello_count(httpx.get(metrics_url, timeout=5).text, route) for _ in range(10)]
        assert set(answered) == {sent}, answered
        assert server.process.poll() is None
        server.stop()
    assert "Address already in use" not in server.stderr
    assert "cannot serve metrics" not in server.stderr
