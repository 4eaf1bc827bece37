"""Under waitress, a WSGI server obs cannot ask to say ``Connection: close``: an app's
exception is answered by waitress as without obs, and a keep-alive client never gets a reset.

waitress closes the connection of a request that raised. Before, obs answered the 500 itself
(keep-alive, since an app may not send ``Connection``): 40 of the 400 requests of 200
crash/next-request pairs on one connection failed (``python -m tests.integration.keepalive``).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.conftest import free_port
from tests.integration.apps import wsgi_bodies_app
from tests.integration.servers import APPS as INTEGRATION_APPS
from tests.integration.servers import serve

APPS = Path(__file__).resolve().parents[1] / "conformance" / "wsgi" / "apps"
ROUNDS = 40


def test_a_keep_alive_client_survives_the_apps_exceptions() -> None:
    port = free_port()
    argv = ["waitress", f"--listen=127.0.0.1:{port}", "plain_app:app"]
    failures: list[str] = []
    with serve(argv, port, cwd=APPS) as server:
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            for i in range(ROUNDS):
                for path, status in (("/early", 500), ("/late", 500), ("/", 200)):
                    try:
                        response = client.get(path)
                    except httpx.TransportError as exc:
                        failures.append(f"round {i} {path}: {exc!r}")
                        continue
                    if response.status_code != status:
                        failures.append(f"round {i} {path}: {response.status_code}")
                    elif status == 500 and response.headers.get("connection") != "close":
                        failures.append(f"round {i} {path}: {response.headers}")
        server.stop()
    assert not failures, failures[:5]
    records = [json.loads(line) for line in server.lines()]  # every stdout line is JSON
    access = [r for r in records if r.get("event") == "request" and r["path"] != "/metrics"]
    recorded = [(r["path"], r["status"], r.get("error_type", "")) for r in access]
    assert sorted(set(recorded)) == [
        ("/", 200, ""),
        ("/early", 500, "RuntimeError"),
        ("/late", 500, "ValueError"),
    ]
    assert len(recorded) == 3 * ROUNDS  # one access line per request
    assert all("exception" in r for r in access if r["status"] == 500)


def test_the_server_still_sizes_a_one_chunk_body_and_sends_its_file_wrapper() -> None:
    """waitress gives a one-chunk list body (PEP 3333: ``len(body) == 1``) and its own
    ``wsgi.file_wrapper`` a Content-Length and keeps the connection. Behind obs before, both
    came back chunked with ``Connection: close``."""
    port = free_port()
    argv = ["waitress", f"--listen=127.0.0.1:{port}", "wsgi_bodies_app:app"]
    file_size = Path(wsgi_bodies_app.FILE).stat().st_size
    answers = []
    with serve(argv, port, cwd=INTEGRATION_APPS) as server:
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            for path in ("/", "/file", "/", "/file"):
                response = client.get(path)
                answers.append(
                    (
                        path,
                        response.status_code,
                        response.headers.get("content-length"),
                        response.headers.get("transfer-encoding"),
                        response.headers.get("connection"),
                        len(response.content),
                    )
                )
        server.stop()
    assert answers == 2 * [
        ("/", 200, "11", None, None, 11),
        ("/file", 200, str(file_size), None, None, file_size),
    ]
    records = [json.loads(line) for line in server.lines()]
    access = [r for r in records if r.get("event") == "request" and r["path"] != "/metrics"]
    assert [(r["path"], r["status"], r["bytes_out"]) for r in access] == 2 * [
        ("/", 200, 11),
        ("/file", 200, file_size),
    ]
