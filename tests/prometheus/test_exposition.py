from __future__ import annotations

import asyncio
import gzip
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from obs.exceptions import ObsError
from obs.metrics import get_metrics
from obs.prometheus.exposition import authorized, basic_authorization, render, start_metrics_server
from tests.conftest import free_port


def test_render_negotiates_format_and_gzip(registry: CollectorRegistry) -> None:
    get_metrics(registry).log_events.labels("info").inc()
    body, headers = render(registry, None)
    assert dict(headers)["Content-Type"].startswith("text/plain")
    assert b'obs_log_events_total{level="info"} 1.0' in body
    om, om_headers = render(registry, "application/openmetrics-text; version=1.0.0")
    assert dict(om_headers)["Content-Type"].startswith("application/openmetrics-text")
    assert om.endswith(b"# EOF\n")
    zipped, zip_headers = render(registry, None, "gzip, deflate")
    assert dict(zip_headers)["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped) == body


def test_separate_metrics_port_on_loopback(registry: CollectorRegistry) -> None:
    get_metrics(registry)
    port = free_port()
    server, thread = start_metrics_server(port, registry=registry)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            assert b"obs_build_info" in response.read()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_busy_port_is_a_clear_error(registry: CollectorRegistry) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ObsError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            start_metrics_server(port, registry=registry)


def test_basic_auth_helpers() -> None:
    expected = basic_authorization("u", "p")
    assert expected == b"Basic dTpw"
    assert authorized(expected, b"Basic dTpw")
    assert not authorized(expected, b"Basic dTpx")
    assert not authorized(expected, None)
    assert authorized(None, None)


def test_workers_share_the_metrics_port_in_multiprocess_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each worker of a multiprocess server serves the same aggregate: all may bind the port."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    port = free_port()
    servers = [start_metrics_server(port), start_metrics_server(port)]
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_port_another_server_holds_is_refused_in_multiprocess_mode_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with socket.socket() as taken:  # bound without SO_REUSEPORT, as any other server is
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ObsError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            start_metrics_server(port)


def test_a_process_with_its_own_registry_keeps_the_port_to_itself(
    registry: CollectorRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    port = free_port()
    server, thread = start_metrics_server(port, registry=registry)
    try:
        with pytest.raises(ObsError, match="cannot serve metrics"):
            start_metrics_server(port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    ("accept_encoding", "zipped"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("gzip;q=0.5, identity", True),
        ("*;q=0.1", True),
        ("GZIP;Q=1", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("*, gzip;q=0", False),
        ("deflate, br", False),
        ("identity", False),
    ],
)
def test_gzip_is_sent_only_when_its_q_value_is_above_zero(
    registry: CollectorRegistry, accept_encoding: str, zipped: bool
) -> None:
    get_metrics(registry)
    _, headers = render(registry, None, accept_encoding)
    assert (dict(headers).get("Content-Encoding") == "gzip") is zipped


def _wsgi_call(app: Any, method: str) -> tuple[str, dict[str, str], bytes]:
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer.update(status=status, headers=dict(headers))

    body = b"".join(app({"REQUEST_METHOD": method, "PATH_INFO": "/metrics"}, start_response))
    return answer["status"], answer["headers"], body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_only_get_and_head_are_scrapes_in_every_adapter(
    registry: CollectorRegistry, method: str
) -> None:
    """A POST to /metrics is not a scrape: 405 with ``Allow: GET, HEAD``, no metrics."""
    from obs import asgi, wsgi
    from tests.asgi_client import call, http_scope

    get_metrics(registry).log_events.labels("info").inc()
    status, headers, body = _wsgi_call(wsgi.make_metrics_app(registry), method)
    assert status.startswith("405") and headers["Allow"] == "GET, HEAD", (status, headers)
    assert b"obs_log_events" not in body
    exchange = asyncio.run(call(asgi.make_metrics_app(registry), http_scope("/metrics", method)))
    assert exchange.status == 405 and exchange.headers[b"allow"] == b"GET, HEAD"
    assert b"obs_log_events" not in exchange.body
    port = free_port()
    server, thread = start_metrics_server(port, registry=registry)
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", method=method)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        refused.value.close()  # the error holds the response's socket
        assert refused.value.code == 405 and refused.value.headers["Allow"] == "GET, HEAD"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    for allowed in ("GET", "HEAD"):
        status, _, body = _wsgi_call(wsgi.make_metrics_app(registry), allowed)
        assert status == "200 OK" and (b"obs_log_events" in body) is (allowed == "GET")
