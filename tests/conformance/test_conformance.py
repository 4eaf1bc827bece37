"""Every row of :mod:`tests.conformance.scenarios`, for every layout, through every real server.

Per (layout, server): start the server as deployed, send the layout's rows, scrape ``/metrics``,
stop the server, then check that the duration histogram counts exactly the requests sent with
the expected labels, that the exception counter counts the rows that raised, and that stdout
holds exactly one JSON access line per request, whose ``request_id`` is the response's
``X-Request-ID``, with the traceback once and nowhere else.
"""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conformance.scenarios import HANG_UP, LAYOUTS, ROWS, SERVERS, Row, server_argv
from tests.conftest import free_port
from tests.integration.servers import serve

APPS = Path(__file__).resolve().parent / "apps"
DURATION = "http_server_request_duration_seconds"


def hang_up(base_url: str, row: Row) -> str:
    """Request *row*'s path, read the response head, hang up; the response's request id."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET {row.path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            assert chunk, f"{row.path}: the server closed before the response head"
            head += chunk
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"x-request-id":
            return value.strip().decode()
    raise AssertionError(f"{row.path}: no X-Request-ID in {head!r}")


def send(client: httpx.Client, base_url: str, row: Row) -> str:
    """Send *row*'s request; the response's ``X-Request-ID``."""
    if row.action == HANG_UP:
        return hang_up(base_url, row)
    # A connection of its own per row: when a framework sends its 500 and then re-raises
    # (Starlette), uvicorn closes the connection without saying so, and a keep-alive client's
    # next request gets a reset, with or without obs. obs's own 500 says so (``Row.closes``).
    response = client.get(row.path, headers=dict(row.headers))
    assert response.status_code == row.status, f"{row}: got {response.status_code}"
    if row.closes:
        assert response.headers.get("connection") == "close", f"{row}: {response.headers}"
    return response.headers["x-request-id"]


def samples(text: str, name: str) -> list[Any]:
    for family in text_string_to_metric_families(text):
        if family.name == name:
            return [s for s in family.samples if s.name.endswith(("_count", "_total"))]
    return []


def recorded(text: str) -> Counter[tuple[str, str, str]]:
    """(route, status, error_type) -> requests, leaving out the scrapes of ``/metrics``."""
    out: Counter[tuple[str, str, str]] = Counter()
    for s in samples(text, DURATION):
        labels = s.labels
        if labels["http_route"] != "/metrics" and s.value:
            key = (labels["http_route"], labels["http_response_status_code"], labels["error_type"])
            out[key] += int(s.value)
    return out


def exceptions(text: str) -> Counter[tuple[str, str]]:
    out: Counter[tuple[str, str]] = Counter()
    for s in samples(text, "http_server_exceptions"):
        out[(s.labels["http_route"], s.labels["error_type"])] += int(s.value)
    return out


@pytest.mark.timeout(180)
@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_layout_through_server(layout: str, server: str) -> None:
    rows = [row for row in ROWS if row.layout == layout]
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    sent: dict[str, Row] = {}
    with serve(server_argv(server, layout, port), port, cwd=APPS) as running:
        for row in rows:
            with httpx.Client(base_url=base_url, timeout=10) as client:
                request_id = send(client, base_url, row)
            assert request_id not in sent
            sent[request_id] = row
        # A hung-up request is finished when the server tells the app: wait for its count.
        deadline = time.monotonic() + 15
        while True:
            text = httpx.get(base_url + "/metrics", timeout=10).text
            if sum(recorded(text).values()) >= len(rows) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        running.stop()

    records = [json.loads(line) for line in running.lines()]  # every stdout line is JSON
    # A readiness probe of /metrics that gave up while the app was still starting is rightly
    # a 499 before routing (``_unmatched``): not one of the rows.
    probes = Counter(
        (r["http_route"], str(r["status"]), r.get("error_type", ""))
        for r in records
        if r.get("event") == "request" and r.get("path") == "/metrics"
    )
    probes.pop(("/metrics", "200", ""), None)
    expected = Counter((r.route, str(r.status), r.error_type) for r in rows) + probes
    assert recorded(text) == expected, [r for r in records if r.get("status") == 499]
    expected_exceptions = Counter((r.route, r.error_type) for r in rows if r.raised)
    assert exceptions(text) == expected_exceptions

    access = [r for r in records if r.get("event") == "request" and r.get("path") != "/metrics"]
    by_id = Counter(r.get("request_id") for r in access)
    assert by_id == Counter(sent.keys()), "one access line per request, carrying its request id"
    for record in access:
        row = sent[record["request_id"]]
        assert record["http_route"] == row.route, record
        assert record["status"] == row.status, record
        # A 5xx without exception is labelled by its status in metrics; the line has its status.
        line_error = "" if row.error_type == str(row.status) else row.error_type
        assert record.get("error_type", "") == line_error, record
        assert ("exception" in record) == row.raised, record
        if row.action == HANG_UP:
            assert record["bytes_out"] < 60 * len(b"chunk 00\n"), record  # what was sent
    # The app's own lines carry the request's route (the logs dashboard's route filter shows
    # them with the access line), or none when it was never routed.
    app_lines = [r for r in records if r.get("event") == "handler"]
    assert Counter(r.get("request_id") for r in app_lines) == Counter(
        request_id for request_id, row in sent.items() if row.logs
    ), app_lines
    for record in app_lines:
        route = sent[record["request_id"]].route
        assert record.get("http_route") == (None if route == "_unmatched" else route), record
    # The traceback once: in the access line, not again in the server's own error line.
    assert sum("exception" in r for r in records) == sum(r.raised for r in rows), [
        r for r in records if "exception" in r and r.get("event") != "request"
    ]
    assert "Traceback" not in running.stderr, running.stderr[-3000:]
