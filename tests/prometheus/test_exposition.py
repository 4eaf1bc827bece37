from __future__ import annotations

import gzip
import socket
import urllib.request
from pathlib import Path

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
