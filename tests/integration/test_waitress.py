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
