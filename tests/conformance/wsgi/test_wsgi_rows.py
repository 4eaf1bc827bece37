"""The WSGI rows of the conformance suite: one table of scenarios, run through real gunicorn
workers (sync, gthread, ``--preload``) against apps laid out as each framework's docs teach.

A row is a request and what obs must make of it: the ``http_route`` label, the status, the
``error_type`` label, whether the exceptions counter moves, fields of the access line, and the
response's ``X-Request-ID`` (exactly one, the request's id: the client's when it sent a safe
one). Adding a layout is adding rows (and, for a new app, one entry in ``APPS``).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from tests.conftest import free_port
from tests.integration.servers import serve

APPS_DIR = Path(__file__).resolve().parent / "apps"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
#: A field that must be missing from the access line.
ABSENT: Any = object()
#: Each row is sent this many times, so both workers see most rows.
REPEAT = 2
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Row:
    path: str
    route: str
    status: int
    error_type: str = ""
    exception: bool = False  # counted in http_server_exceptions_total
    headers: dict[str, str] = field(default_factory=dict)
    line: dict[str, Any] = field(default_factory=dict)  # access-line fields (ABSENT: missing)
    body: bytes | None = None
    server_error_line: bool = False  # the server logs "Error handling request" with the id

    @property
    def level(self) -> str:
        return "error" if self.status >= 500 else "warning" if self.status >= 400 else "info"


ROWS: dict[str, list[Row]] = {
    "flask": [
        Row("/v1/items/7", "/v1/items/<int:item_id>", 200, line={"user_id": ABSENT}),
        Row("/v2/items/7?user=alice", "/v2/items/<int:item_id>", 200, line={"user_id": "alice"}),
        Row("/api/items/8", "/api/items/<int:item_id>", 200, line={"user_id": ABSENT}),
        Row("/v1/items/7/gone", "/v1/items/<int:item_id>/gone", 410),
        Row("/v2/items/lookup/k", "/v2/items/lookup/<key>", 404),  # an errorhandler's 404
        Row("/admin/panel", "/admin/panel", 403),  # abort() in before_request
        Row("/admin/panel", "/admin/panel", 200, headers={"X-Staff": "yes"}),
        Row("/boom", "/boom", 500, "RuntimeError", exception=True, body=b"sorry"),
        Row("/stream?who=ann", "/stream", 200, body=b"0\n1\n2\n"),
        Row("/own-id", "/own-id", 200, body=b"mine"),
        Row("/v1/items/1", "/v1/items/<int:item_id>", 200, headers={"X-Request-ID": "client-1"}),
        Row("/nowhere/1", "_unmatched", 404),
    ],
    "django": [
        Row("/polls/3/", "/polls/<int:question_id>/", 200, line={"user_id": ABSENT}),
        Row("/polls/3/?user=bob", "/polls/<int:question_id>/", 200, line={"user_id": "bob"}),
        Row("/polls/3/results/", "/polls/{question_id}/results/", 200),  # re_path in include()
        Row("/archive/2024/", "/archive/{year}/", 200, body=b"2024"),  # re_path
        Row("/v2/articles/hello-world/", "/v2/articles/{slug}/", 200),  # re_path include re_path
        Row("/boom", "/boom", 500, "RuntimeError", exception=True),
        Row("/missing", "/missing", 404),  # Http404 is no error
        Row("/own-id", "/own-id", 200, body=b"mine"),
        Row("/stream", "/stream", 200, body=b"0\n1\n2\n"),
        Row("/polls/1/", "/polls/<int:question_id>/", 200, headers={"X-Request-ID": "client-1"}),
        Row("/nowhere/1", "_unmatched", 404),
    ],
    "plain": [
        Row("/", "_unmatched", 200, body=b"hello"),
        Row("/gen", "_unmatched", 200, body=b"ab"),
        Row(
            "/early",
            "_unmatched",
            500,
            "RuntimeError",
            exception=True,
            body=b"Internal Server Error",
            server_error_line=True,
        ),
        Row(
            "/late",
            "_unmatched",
            500,
            "ValueError",
            exception=True,
            body=b"Internal Server Error",
            server_error_line=True,
        ),
        Row("/own-id", "_unmatched", 200, body=b"mine"),
    ],
}
APPS = {
    "flask": "flask_shop:app",
    "django": "django_site.wsgi:application",
    "plain": "plain_app:app",
}
WORKERS = {
    "sync": [],
    "gthread": ["-k", "gthread", "--threads", "4"],
    "preload": ["--preload"],
}


def gunicorn(target: str, port: int, *extra: str) -> list[str]:
    return [
        "gunicorn", "-c", "python:obs.gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
        "--graceful-timeout", "5", *extra, target,
    ]  # fmt: skip


def scrape(base_url: str) -> dict[str, Any]:
    text = httpx.get(base_url + "/metrics", headers={"accept": OPENMETRICS}, timeout=15).text
    return {family.name: family for family in text_string_to_metric_families(text)}


def recorded(families: dict[str, Any]) -> tuple[Counter[tuple[str, int, str]], Counter[str]]:
    """Requests by (route, status, error type), and exceptions by route; /metrics left out."""
    requests: Counter[tuple[str, int, str]] = Counter()
    for s in families["http_server_request_duration_seconds"].samples:
        if s.name.endswith("_count") and s.labels["http_route"] != "/metrics":
            key = (
                s.labels["http_route"],
                int(s.labels["http_response_status_code"]),
                s.labels["error_type"],
            )
            requests[key] += int(s.value)
    exceptions: Counter[str] = Counter()
    family = families.get("http_server_exceptions")
    for s in family.samples if family is not None else ():
        if s.name.endswith("_total"):
            exceptions[s.labels["http_route"]] += int(s.value)
    return requests, exceptions


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("worker", sorted(WORKERS))
@pytest.mark.parametrize("app", sorted(APPS))
def test_wsgi_rows(app: str, worker: str, tmp_path: Path) -> None:
    rows = ROWS[app]
    port = free_port()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "multiproc"), "OBS_SERVICE_NAME": app}
    problems: list[str] = []
    sent: dict[str, Row] = {}  # request id -> row
    with serve(gunicorn(APPS[app], port, *WORKERS[worker]), port, cwd=APPS_DIR, env=env) as server:
        with httpx.Client(base_url=server.base_url, timeout=15) as client:
            for row in rows * REPEAT:
                # One keep-alive client, as real ones: a worker closes the connection of a
                # request that raised, and obs's 500 says so, or the next request gets a reset.
                response = client.get(row.path, headers=row.headers)
                ids = response.headers.get_list("x-request-id")
                where = f"{row.path} {row.headers or ''}"
                if response.status_code != row.status:
                    problems.append(f"{where}: status {response.status_code}, not {row.status}")
                if row.server_error_line and response.headers.get("connection") != "close":
                    problems.append(f"{where}: no Connection: close: {response.headers}")
                if row.body is not None and response.content != row.body:
                    problems.append(f"{where}: body {response.content[:80]!r}")
                if len(ids) != 1:
                    problems.append(f"{where}: X-Request-ID headers {ids}, not exactly one")
                    continue
                wanted = row.headers.get("X-Request-ID")
                if (ids[0] != wanted) if wanted else not GENERATED_ID.fullmatch(ids[0]):
                    problems.append(f"{where}: X-Request-ID {ids[0]!r}")
                sent[ids[0]] = row
        requests, exceptions = recorded(scrape(server.base_url))
        server.stop()

    expected: Counter[tuple[str, int, str]] = Counter()
    for row in rows:
        expected[(row.route, row.status, row.error_type)] += REPEAT
    if requests != expected:
        problems.append(f"counted {dict(requests)}, expected {dict(expected)}")
    expected_exceptions: Counter[str] = Counter()
    for row in rows:
        if row.exception:
            expected_exceptions[row.route] += REPEAT
    if exceptions != expected_exceptions:
        problems.append(f"exceptions {dict(exceptions)}, expected {dict(expected_exceptions)}")

    records = [json.loads(line) for line in server.lines()]  # every line is whole JSON
    problems += _check_lines(records, sent)
    assert not problems, "\n".join(problems)


def _check_lines(records: list[dict[str, Any]], sent: dict[str, Row]) -> list[str]:
    problems = []
    access = {r["request_id"]: r for r in records if r.get("event") == "request"}
    access = {k: v for k, v in access.items() if v.get("http_route") != "/metrics"}
    if set(access) != set(sent):
        problems.append(f"access lines for {len(access)} requests, {len(sent)} sent")
    for request_id, row in sent.items():
        line = access.get(request_id)
        if line is None:
            continue
        want = {"http_route": row.route, "status": row.status, "level": row.level}
        want["error_type"] = row.error_type or ABSENT
        want.update(row.line)
        for key, value in want.items():
            got = line.get(key, ABSENT)
            if got is not value and got != value:
                shown = "absent" if got is ABSENT else repr(got)
                problems.append(f"{row.path}: access line {key}={shown}, expected {value!r}")
        if row.exception and line.get("exception", [{}])[0].get("exc_type") != row.error_type:
            problems.append(f"{row.path}: the access line has no {row.error_type} traceback")
        if row.server_error_line and not any(
            str(r.get("event", "")).startswith("Error handling request")
            and r.get("request_id") == request_id
            for r in records
        ):
            problems.append(f"{row.path}: no 'Error handling request' line with its request id")
    for record in records:  # every line of a request carries its own context, no other
        request_id = record.get("request_id")
        row = sent.get(request_id) if request_id else None
        if row is None:
            if "user_id" in record or (request_id and record.get("http_route") != "/metrics"):
                problems.append(f"a line of no request sent: {record}")
            continue
        user = row.line.get("user_id", ABSENT)
        if record.get("user_id", ABSENT) != user:
            problems.append(f"{row.path}: line {record.get('event')!r} user_id wrong: {record}")
        if record.get("event") != "request":
            # The app's own lines (and Django's) carry the request's route once it is routed,
            # so the logs dashboard's route filter keeps them; never a route it did not match.
            route = None if row.route == "_unmatched" else row.route
            if record.get("http_route") != route:
                problems.append(f"{row.path}: line {record.get('event')!r} route wrong: {record}")
    django_lines = [r for r in records if r.get("logger") == "django.request"]
    problems += [
        f"django.request line without its request id: {r}"
        for r in django_lines
        if r.get("request_id") not in sent
    ]
    return problems
