"""Acceptance of the WSGI middleware under each real server (gunicorn sync and gthread
workers, waitress): what is recorded is what the client got."""

from __future__ import annotations

import json
import socket
import struct
import time

import httpx
import pytest

from tests.conftest import free_port
from tests.integration.apps.wsgi_bodies_app import STREAM_CHUNK
from tests.integration.servers import Server, serve

SERVERS = {
    "gunicorn sync": ["gunicorn", "-k", "sync", "--timeout", "20"],
    "gunicorn gthread": ["gunicorn", "-k", "gthread", "--threads", "4", "--timeout", "20"],
    "waitress": ["waitress"],
}


def argv(server: str, port: int) -> list[str]:
    if server == "waitress":
        return ["waitress", f"--listen=127.0.0.1:{port}", "wsgi_bodies_app:app"]
    return [*SERVERS[server], "-w", "1", "-b", f"127.0.0.1:{port}", "wsgi_bodies_app:app"]


def hang_up_mid_stream(port: int, request_id: str) -> int:
    """Request the long stream, read part of it, reset the connection; bytes read."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"GET /stream HTTP/1.1\r\nHost: x\r\nX-Request-ID: {request_id}\r\n\r\n".encode()
        )
        got = b""
        while len(got) < 2 * len(STREAM_CHUNK):
            chunk = sock.recv(65536)
            assert chunk, "the server closed before the body"
            got += chunk
        # SO_LINGER 0: close() resets the connection, the server's next send fails at once.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return len(got)


def wait_for_a_499(base_url: str, timeout: float = 15.0) -> None:
    """Scrape until the server recorded a 499 (the rest of the stream takes about 2 s)."""
    deadline = time.monotonic() + timeout
    while 'http_response_status_code="499"' not in httpx.get(base_url + "/metrics").text:
        assert time.monotonic() < deadline, "no 499 recorded"
        time.sleep(0.1)


def access_lines(server: Server) -> dict[str, dict[str, object]]:
    records = [json.loads(line) for line in server.lines() if line.startswith("{")]
    return {
        str(r["request_id"]): r
        for r in records
        if r.get("event") == "request" and r["path"] != "/metrics"
    }


@pytest.mark.parametrize("server_name", SERVERS)
def test_a_client_that_hangs_up_mid_stream_is_a_499(server_name: str) -> None:
    """Before, the server's close() of an unfinished body was recorded as the app's 200."""
    port = free_port()
    with serve(argv(server_name, port), port) as server:
        with httpx.Client(base_url=server.base_url, timeout=20) as client:
            whole = client.get("/stream", headers={"X-Request-ID": "whole"})
            head = client.head("/stream", headers={"X-Request-ID": "head"})
            one = client.get("/", headers={"X-Request-ID": "one"})
        assert whole.status_code == head.status_code == one.status_code == 200
        hang_up_mid_stream(port, "gone")
        wait_for_a_499(server.base_url)
        server.stop()
    lines = access_lines(server)
    assert (lines["whole"]["status"], lines["whole"]["bytes_out"]) == (200, 200 * 65536)
    assert (lines["head"]["status"], lines["head"]["bytes_out"]) == (200, 0)
    assert (lines["one"]["status"], lines["one"]["bytes_out"]) == (200, 11)
    gone = lines["gone"]
    assert gone["status"] == 499, gone
    assert 2 * 65536 <= int(str(gone["bytes_out"])) < 200 * 65536, gone
