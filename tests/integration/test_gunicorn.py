"""Acceptance of the WSGI adapters and multiprocess metrics: Flask and Django behind gunicorn."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om

from tests.conftest import free_port
from tests.integration.servers import Server, serve

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
N = 2000
CLIENTS = 8

APPS = {
    "flask": ("flask_app:app", "/items/{}", "/items/<item_id>"),
    "django": ("djangoproject.wsgi:application", "/polls/{}/", "/polls/<int:question_id>/"),
}
USER_ROUTE = {"flask": "/api/users/<name>", "django": "/api/users/<str:name>"}


def gunicorn(target: str, port: int, workers: int, *extra: str) -> list[str]:
    return [
        "gunicorn", "-c", "python:obs.gunicorn", "-w", str(workers),
        "-b", f"127.0.0.1:{port}", "--graceful-timeout", "5", *extra, target,
    ]  # fmt: skip


def plan(app: str, count: int) -> list[str]:
    """*count* paths over every route: items, users, a raising view, unknown paths."""
    item = APPS[app][1]
    paths = []
    for i in range(count):
        kind = i % 10
        if kind == 9:
            paths.append("/boom")
        elif kind == 8:
            paths.append(f"/nowhere/{i}")
        elif kind % 2:
            paths.append(f"/api/users/u{i}")
        else:
            paths.append(item.format(i))
    return paths


def drive(base_url: str, paths: list[str]) -> dict[str, tuple[str, int]]:
    """Send every path from a few parallel clients; return request id -> (path, status)."""

    def run(chunk: list[str]) -> list[tuple[str, str, int]]:
        out = []
        with httpx.Client(base_url=base_url, timeout=15) as client:
            for path in chunk:
                response = client.get(path)
                out.append((response.headers["x-request-id"], path, response.status_code))
        return out

    chunks = [paths[i::CLIENTS] for i in range(CLIENTS)]
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = [row for rows in pool.map(run, chunks) for row in rows]
    return {rid: (path, status) for rid, path, status in results}


def scrape(base_url: str) -> dict[str, Any]:
    text = httpx.get(base_url + "/metrics", headers={"accept": OPENMETRICS}, timeout=15).text
    return {family.name: family for family in parse_om(text)}


def counts(families: dict[str, Any]) -> Counter[tuple[str, str, str]]:
    out: Counter[tuple[str, str, str]] = Counter()
    for s in families["http_server_request_duration_seconds"].samples:
        if s.name.endswith("_count") and s.labels["http_route"] != "/metrics":
            out[
                (
                    s.labels["http_route"],
                    s.labels["http_response_status_code"],
                    s.labels["error_type"],
                )
            ] += int(s.value)
    return out


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("app", sorted(APPS))
def test_counts_add_up_across_workers(app: str, workers: int, tmp_path: Path) -> None:
    target, _, item_route = APPS[app]
    port = free_port()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "multiproc"), "OBS_SERVICE_NAME": app}
    with serve(gunicorn(target, port, workers), port, env=env) as server:
        sent = drive(server.base_url, plan(app, N))
        assert len(sent) == N, "request ids must be unique"
        time.sleep(1.5)  # the workers' side files (exemplars) are written every second
        families = scrape(server.base_url)
        by_route = counts(families)

        assert sum(by_route.values()) == N
        expected = Counter(
            {
                (item_route, "200", ""): N * 4 // 10,
                (USER_ROUTE[app], "200", ""): N * 4 // 10,
                ("/boom", "500", "RuntimeError"): N // 10,
                ("_unmatched", "404", ""): N // 10,
            }
        )
        assert by_route == expected

        samples = families["http_server_request_duration_seconds"].samples
        exemplar_ids = {
            s.exemplar.labels["request_id"]
            for s in samples
            if s.exemplar and s.labels["http_route"] != "/metrics"
        }
        assert exemplar_ids, "no exemplars in the aggregate"
        assert exemplar_ids <= set(sent), "exemplars must carry the ids the clients got"
        assert any(sent[i][0] == "/boom" for i in exemplar_ids if i in sent)

        pids = {s.labels["pid"] for s in families["process_cpu_seconds"].samples}
        assert len(pids) == workers + 1, pids  # every worker and the master
        gc_pids = {s.labels["pid"] for s in families["python_gc_collections"].samples}
        assert gc_pids == pids
        active = families["http_server_active_requests"].samples
        assert sum(s.value for s in active) == 0  # the scrape itself is not gauged (issue 17)
        server.stop()
    _check_access_log(server, sent)


def _check_access_log(server: Server, sent: dict[str, tuple[str, int]]) -> None:
    records = [json.loads(line) for line in server.lines()]  # every line is whole JSON
    access = [r for r in records if r.get("event") == "request"]
    assert len(access) == N
    assert {r["request_id"]: (r["path"], r["status"]) for r in access} == sent
    boom = [r for r in access if r["path"] == "/boom"]
    assert all(r["level"] == "error" and r["error_type"] == "RuntimeError" for r in boom)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_recycled_workers_lose_nothing_and_stay_flat(tmp_path: Path) -> None:
    directory = tmp_path / "multiproc"
    port = free_port()
    argv = gunicorn(
        "flask_app:app", port, 2, "--max-requests", "10", "--max-requests-jitter", "0", "--preload"
    )
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory), "OBS_ACCESS_LOG": "false"}
    with serve(argv, port, env=env) as server:
        first = plan("flask", 200)  # 20 recycles
        drive(server.base_url, first)
        early_files, early_render = _files(directory), _render_seconds(server.base_url)
        rest = plan("flask", 2000)  # 200 more
        drive(server.base_url, rest)
        late_files, late_render = _files(directory), _render_seconds(server.base_url)

        by_route = counts(scrape(server.base_url))
        assert sum(by_route.values()) == len(first) + len(rest)
        assert by_route[("/boom", "500", "RuntimeError")] == (len(first) + len(rest)) // 10
        assert len(late_files) <= len(early_files) + 6, (early_files, late_files)
        assert late_render < 3 * early_render + 0.05, (early_render, late_render)
        assert sum(1 for name in late_files if name.endswith("_aggregate.db")) >= 2


def _files(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def _render_seconds(base_url: str) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        httpx.get(base_url + "/metrics", headers={"accept": OPENMETRICS}, timeout=15)
        best = min(best, time.perf_counter() - started)
    return best


# -- request context under threads: every line carries its own request's context, no other ----

CONFORMANCE_APPS = Path(__file__).resolve().parents[1] / "conformance" / "wsgi" / "apps"
CONTEXT_APPS = {
    "flask": ("flask_shop:app", "/v1/items/{i}"),
    "django": ("django_site.wsgi:application", "/polls/{i}/"),
}


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("worker", "requests"), [("gthread", 2000), ("sync", 400)], ids=["gthread", "sync"]
)
@pytest.mark.parametrize("app", sorted(CONTEXT_APPS))
def test_no_line_carries_another_requests_context(
    app: str, worker: str, requests: int, tmp_path: Path
) -> None:
    """Half the views bind ``user_id``; 2 workers x 4 threads (gthread) serve them in parallel."""
    target, item = CONTEXT_APPS[app]
    port = free_port()
    extra = ["-k", "gthread", "--threads", "4"] if worker == "gthread" else []
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "multiproc")}
    paths = [
        item.format(i=i) + (f"?user=u{i}" if i % 2 else "") for i in range(requests)
    ]  # odd requests bind their user, even ones bind nothing
    argv = gunicorn(target, port, 2, *extra)
    with serve(argv, port, cwd=CONFORMANCE_APPS, env=env) as server:

        def run(chunk: list[str]) -> list[tuple[str, str | None]]:
            out = []
            with httpx.Client(base_url=server.base_url, timeout=15) as client:
                for path in chunk:
                    response = client.get(path)
                    assert response.status_code == 200, (path, response.status_code)
                    user = path.partition("?user=")[2] or None
                    out.append((response.headers["x-request-id"], user))
            return out

        with ThreadPoolExecutor(CLIENTS) as pool:
            sent = dict(
                row
                for rows in pool.map(run, [paths[i::CLIENTS] for i in range(CLIENTS)])
                for row in rows
            )
        server.stop()
    assert len(sent) == requests
    records = [json.loads(line) for line in server.lines()]
    lines = [r for r in records if r.get("request_id") in sent]
    foreign = [r for r in lines if r.get("user_id") != sent[r["request_id"]]]
    unowned = [r for r in records if "user_id" in r and r.get("request_id") not in sent]
    assert len(lines) == 2 * requests  # the view's line and the access line of each request
    assert foreign == [] and unowned == [], (len(foreign), foreign[:3], unowned[:3])
