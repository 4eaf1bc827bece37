"""Multiprocess metrics under real gunicorn and uvicorn ``--workers``: what several workers, and
several servers' generations, make of one ``PROMETHEUS_MULTIPROC_DIR``."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
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


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(child) for child in children.read().split()]
    except FileNotFoundError:
        return []


def _wait(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie (reparented, its reaper not there yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _mapped_directory(pid: int) -> str:
    """The multiprocess directory a process maps its ``.db`` files from."""
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        if line.endswith(".db"):
            return os.path.dirname(line.split()[-1])
    return ""


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("chosen_by", ["user", "obs"])
def test_a_binary_upgrade_keeps_the_old_workers_counts(chosen_by: str, tmp_path: Path) -> None:
    """gunicorn's zero-downtime upgrade: ``kill -USR2`` starts a new master beside the old one,
    whose workers still serve; the new master must use the same directory and its start-up
    must not delete their files; the directory obs chose goes with the last master."""
    directory = tmp_path / "multiproc"
    directory.mkdir(mode=0o700)
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    pidfile = tmp_path / "gunicorn.pid"
    port = free_port()
    # The re-exec runs ``python <argv[0]>``: ``-m gunicorn``'s __main__.py would put gunicorn's
    # own directory first on sys.path, where its ``http`` package hides the standard library's.
    argv = [
        "gunicorn.app.wsgiapp", "-c", "python:obs.gunicorn", "-w", "2", "--graceful-timeout", "5",
        "--pid", str(pidfile), "-b", f"127.0.0.1:{port}", "flask_app:app",
    ]  # fmt: skip
    env = {"OBS_ACCESS_LOG": "false"}
    if chosen_by == "user":
        env["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    route = "/items/<item_id>"

    def count() -> int:
        return hello_count(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text, route)

    def send(n: int) -> None:
        for i in range(n):  # new connections: the old and the new workers both answer
            assert httpx.get(f"http://127.0.0.1:{port}/items/{i}", timeout=5).status_code == 200

    with serve(argv, port, env=env) as server:
        old = server.process.pid
        _wait(lambda: len(_children(old)) == 2, "the workers")
        send(30)
        used = _mapped_directory(_children(old)[0])
        assert used == str(directory) if chosen_by == "user" else used, used
        assert count() == 30
        os.kill(old, signal.SIGUSR2)
        new_pidfile = tmp_path / "gunicorn.pid.2"  # the new master's, while the old one lives
        _wait(
            lambda: new_pidfile.exists() and new_pidfile.read_text().strip() != "", "the new master"
        )
        new = int(new_pidfile.read_text())
        _wait(lambda: len(_children(new)) == 2, "the new master's workers")
        _wait(lambda: _mapped_directory(_children(new)[0]) != "", "the new workers' files")
        assert _mapped_directory(_children(new)[0]) == used
        send(10)
        assert [count() for _ in range(4)] == [40] * 4
        os.kill(old, signal.SIGTERM)  # the upgrade's last step: the old master goes
        server.process.wait(timeout=30)
        send(10)
        assert count() == 50
        assert os.path.isdir(used)  # still the new master's
        os.kill(new, signal.SIGTERM)
        _wait(lambda: _gone(new), "the new master's exit")
    assert os.path.isdir(used) is (chosen_by == "user")  # obs's own goes with the last master


REPLACING_CONF = """
from obs.gunicorn import *  # noqa: F403
from prometheus_client import multiprocess

def child_exit(server, worker):  # prometheus_client's documented hook, replacing obs's
    multiprocess.mark_process_dead(worker.pid)

def post_fork(server, worker):
    server.log.info("user post_fork %s", worker.pid)
"""
COMPOSING_CONF = """
import obs.gunicorn
from obs.gunicorn import *  # noqa: F403
from obs.gunicorn import post_fork as obs_post_fork

def child_exit(server, worker):
    server.log.info("user child_exit %s", worker.pid)
    obs.gunicorn.child_exit(server, worker)

def post_fork(server, worker):
    obs_post_fork(server, worker)
"""
WARNING = "the gunicorn configuration replaces obs.gunicorn's"


@pytest.mark.slow
@pytest.mark.timeout(90)
@pytest.mark.parametrize("conf", ["replacing", "composing"])
def test_hooks_of_a_configuration_file_compose_with_obs_or_are_warned_about(
    conf: str, tmp_path: Path
) -> None:
    """``from obs.gunicorn import *`` then ``def child_exit``: gunicorn keeps the last one, so
    obs's is gone unless the user's calls it; the master says so in one line at start-up."""
    directory = tmp_path / "multiproc"
    directory.mkdir(mode=0o700)
    config = tmp_path / "gunicorn_conf.py"
    config.write_text(REPLACING_CONF if conf == "replacing" else COMPOSING_CONF)
    port = free_port()
    argv = [
        "gunicorn", "-c", str(config), "-w", "2", "--max-requests", "5",
        "--max-requests-jitter", "0", "-b", f"127.0.0.1:{port}", "flask_app:app",
    ]  # fmt: skip
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory), "OBS_ACCESS_LOG": "false"}
    with serve(argv, port, env=env) as server:
        for i in range(60):  # about a dozen recycled workers
            assert httpx.get(f"{server.base_url}/items/{i}", timeout=5).status_code == 200
        time.sleep(0.5)
        per_worker = [n for n in os.listdir(directory) if n.startswith("histogram_")]
        server.stop()
    output = server.stdout + server.stderr
    warnings = [line for line in output.splitlines() if WARNING in line]
    if conf == "replacing":
        assert len(warnings) == 1, warnings
        assert "obs.gunicorn's child_exit, post_fork without calling them" in warnings[0]
        assert "obs.gunicorn.child_exit(server, worker)" in warnings[0]
        assert len(per_worker) > 6, per_worker  # nothing folds: a file per dead worker
    else:
        assert warnings == []
        assert "user child_exit" in output
        assert len(per_worker) <= 4, per_worker  # the live workers' and the aggregate


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_uvicorn_workers_have_process_series_before_their_first_request(tmp_path: Path) -> None:
    """uvicorn has no ``post_fork``: each worker's side file starts with its middleware, so a
    worker that has recorded nothing yet is in the scrape (scrapes themselves are not recorded)."""
    directory = tmp_path / "multiproc"
    directory.mkdir(mode=0o700)
    port = free_port()
    argv = [
        "uvicorn", "--workers", "2", "--no-access-log", "--host", "127.0.0.1",
        "--port", str(port), "starlette_app:app",
    ]  # fmt: skip
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory)}
    with serve(argv, port, env=env) as server:
        deadline, pids = time.monotonic() + 20, set[str]()
        while len(pids) < 2 and time.monotonic() < deadline:
            pids = pids_of(httpx.get(f"{server.base_url}/metrics", timeout=5).text)
            time.sleep(0.2)
        # The supervisor's children: the two workers (and multiprocessing's resource tracker).
        children = {str(pid) for pid in _children(server.process.pid)}
        text = httpx.get(f"{server.base_url}/metrics", timeout=5).text
        assert hello_count(text, "/items/{item_id}") == 0  # nothing recorded
        assert len(pids) == 2 and pids <= children, (pids, children)
        gc_pids = {
            sample.labels["pid"]
            for family in text_string_to_metric_families(text)
            if family.name == "python_gc_collections"
            for sample in family.samples
        }
        assert gc_pids == pids
