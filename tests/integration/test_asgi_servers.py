"""Acceptance of the ASGI middleware: Starlette, FastAPI and Litestar behind a real uvicorn."""

from __future__ import annotations

import asyncio
import json
import random
import string
import subprocess
import time
from typing import Any

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from tests.conftest import free_port
from tests.integration.servers import Server, serve

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
UNKNOWN_PATHS = 10_000


def uvicorn(module: str, port: int) -> list[str]:
    return [
        "uvicorn",
        f"{module}:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
    ]


async def hammer_unknown_paths(base_url: str, count: int, concurrency: int = 16) -> None:
    paths = iter(
        "/" + "".join(random.choices(string.ascii_lowercase + string.digits, k=12)) + f"/{i}"
        for i in range(count)
    )
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:

        async def worker() -> None:
            for path in paths:
                response = await client.get(path)
                assert response.status_code == 404

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def duration_samples(families: Any) -> list[Any]:
    for family in families:
        if family.name == "http_server_request_duration_seconds":
            return list(family.samples)
    raise AssertionError("no http_server_request_duration_seconds in the exposition")


def count_by(samples: list[Any], **match: str) -> float:
    return sum(
        s.value
        for s in samples
        if s.name.endswith("_count") and all(s.labels.get(k) == v for k, v in match.items())
    )


# Starlette and FastAPI send their 500 and re-raise to the server; Litestar handles the
# exception itself and returns a 500, so obs sees a 5xx without an exception.
PROPAGATES = {"starlette_app": True, "fastapi_app": True, "litestar_app": False}


@pytest.fixture(params=sorted(PROPAGATES))
def server(request: pytest.FixtureRequest) -> Any:
    port = free_port()
    with serve(uvicorn(request.param, port), port) as running:
        running.name = request.param
        yield running


@pytest.mark.timeout(240)
def test_metrics_logs_and_ids_through_a_real_server(server: Server) -> None:
    ids: dict[str, str] = {}
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        for i in range(5):
            response = client.get(f"/items/{i}")
            assert response.status_code == 200
            ids[response.headers["x-request-id"]] = f"/items/{i}"
        response = client.get("/api/users/ann")
        assert response.json() == {"user": "ann"}
        ids[response.headers["x-request-id"]] = "/api/users/ann"

        # A connection of its own: the server closes the connection of a request whose
        # exception propagated, exactly as it does without obs.
        boom = httpx.get(server.base_url + "/boom", timeout=10)
        assert boom.status_code == 500
        ids[boom.headers["x-request-id"]] = "/boom"

        started = time.perf_counter()
        streamed = client.get("/stream")
        stream_seconds = time.perf_counter() - started
        assert streamed.text.count("chunk") == 5
        ids[streamed.headers["x-request-id"]] = "/stream"

        kept = client.get("/items/x", headers={"x-request-id": "upstream-id.42"})
        assert kept.headers["x-request-id"] == "upstream-id.42"
        ids["upstream-id.42"] = "/items/x"
        for bad in ("x" * 500, "bad\x01id", "two words"):
            replaced = client.get("/items/y", headers={"x-request-id": bad})
            if "x-request-id" not in replaced.headers:
                # The server's own parser refused it before any app ran (uvicorn with
                # httptools rejects control characters): its 400, not obs's to answer.
                assert replaced.status_code == 400 and bad == "bad\x01id"
                continue
            assert replaced.headers["x-request-id"] != bad
            assert len(replaced.headers["x-request-id"]) == 32
            ids[replaced.headers["x-request-id"]] = "/items/y"

    asyncio.run(hammer_unknown_paths(server.base_url, UNKNOWN_PATHS))

    om_text = httpx.get(server.base_url + "/metrics", headers={"accept": OPENMETRICS}).text
    plain_text = httpx.get(server.base_url + "/metrics").text
    samples = duration_samples(parse_om(om_text))

    routes = {s.labels["http_route"] for s in samples}
    # /metrics is not among them: the scrape is neither counted nor gauged (issue 17).
    expected = {"/items/{item_id}", "/api/users/{name}", "/boom", "/stream"}
    assert routes == expected | {"_unmatched"}  # 10,000 unknown paths added one value
    assert (
        count_by(samples, http_route="_unmatched", http_response_status_code="404") == UNKNOWN_PATHS
    )
    items = sum(1 for path in ids.values() if path.startswith("/items/"))  # what reached the app
    assert items in (8, 9)  # 9 unless the server's parser refused one (above)
    assert (
        count_by(samples, http_route="/items/{item_id}", http_response_status_code="200") == items
    )
    error_type = "RuntimeError" if PROPAGATES[server.name] else "500"
    assert (
        count_by(
            samples, http_route="/boom", http_response_status_code="500", error_type=error_type
        )
        == 1
    )

    stream_sum = next(
        s.value for s in samples if s.name.endswith("_sum") and s.labels["http_route"] == "/stream"
    )
    assert 0.45 <= stream_sum <= stream_seconds + 0.05

    exemplar_ids = {s.exemplar.labels["request_id"] for s in samples if s.exemplar is not None}
    assert exemplar_ids & set(ids), "no exemplar carries a request id we were given"
    assert all(len(i) <= 64 for i in exemplar_ids)

    parse_text(plain_text)  # the classic format parses too
    check = subprocess.run(
        ["promtool", "check", "metrics"],
        input=plain_text,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert check.returncode == 0, check.stdout + check.stderr

    server.stop()
    _check_access_log(server, ids)


def _check_access_log(server: Server, ids: dict[str, str]) -> None:
    # After the server stops, every line it wrote must be one JSON object.
    server_stopped_records = [json.loads(line) for line in server.lines()]
    access = [r for r in server_stopped_records if r.get("event") == "request"]
    by_id: dict[str, list[dict[str, Any]]] = {}
    for record in access:
        by_id.setdefault(record["request_id"], []).append(record)
    for request_id, path in ids.items():
        assert len(by_id.get(request_id, [])) == 1, f"{path}: {by_id.get(request_id)}"
        assert by_id[request_id][0]["path"] == path
    assert sum(1 for r in access if r["status"] == 404) == UNKNOWN_PATHS
    boom_id = next(i for i, p in ids.items() if p == "/boom")
    (boom_line,) = by_id[boom_id]
    assert boom_line["level"] == "error"
    if not PROPAGATES[server.name]:
        return
    assert boom_line["exception"][0]["exc_type"] == "RuntimeError"
    # The exception was re-raised to the server, which logged it through obs as well.
    assert any(
        r.get("logger") == "uvicorn.error" and r.get("level") == "error"
        for r in server_stopped_records
    ), server.stderr[-2000:]
