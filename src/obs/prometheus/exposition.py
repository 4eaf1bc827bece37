"""Rendering a registry for a scrape, shared by the ASGI and WSGI ``/metrics`` apps.

Content negotiation follows Prometheus: OpenMetrics (which carries the exemplars that link a
latency bucket to a request id) when the scraper asks for it, the classic text format otherwise;
gzip when accepted.
"""

from __future__ import annotations

import base64
import gzip
import hmac
import os
import threading
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.exposition import choose_encoder, gzip_accepted

from obs.exceptions import ObsError
from obs.prometheus.render import encode


def default_registry() -> CollectorRegistry:
    """The registry a scrape serves by default: prometheus_client's global one, or with
    ``PROMETHEUS_MULTIPROC_DIR`` set, the aggregate of all worker processes."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from obs.prometheus.multiprocess import scrape_registry

        return scrape_registry()
    return REGISTRY


def render(
    registry: CollectorRegistry | None, accept: str | None, accept_encoding: str | None = None
) -> tuple[bytes, list[tuple[str, str]]]:
    """Return the body and the headers of a scrape of *registry*."""
    encoder, content_type = choose_encoder(accept or "")
    # obs's own families are formatted directly; everything else goes through the encoder.
    body = encode(default_registry() if registry is None else registry, encoder)
    headers = [("Content-Type", content_type)]
    if accept_encoding and gzip_accepted(accept_encoding):
        body = gzip.compress(body, compresslevel=1)
        headers.append(("Content-Encoding", "gzip"))
    headers.append(("Content-Length", str(len(body))))
    return body, headers


#: The answer to a scrape without the right credentials.
UNAUTHORIZED_HEADERS = [
    (b"www-authenticate", b'Basic realm="metrics", charset="UTF-8"'),
    (b"content-type", b"text/plain; charset=utf-8"),
]


def basic_authorization(username: str | None, password: str | None) -> bytes | None:
    """The ``Authorization`` header value a scrape must send, or ``None`` for no auth."""
    if username is None and password is None:
        return None
    if not username or not password:
        raise ObsError("metrics basic auth needs both a username and a password.")
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}".encode("ascii")


def authorized(expected: bytes | None, presented: bytes | None) -> bool:
    """Compare credentials in constant time (no early exit that would leak a prefix).

    The scheme is case-insensitive (RFC 7617: ``basic …`` is valid); only the credentials,
    which are the secret, need the constant-time comparison.
    """
    if expected is None:
        return True
    scheme, _, credentials = (presented or b"").strip().partition(b" ")
    matches = hmac.compare_digest(expected.partition(b" ")[2], credentials.lstrip(b" "))
    return scheme.lower() == b"basic" and matches


def start_metrics_server(
    port: int, addr: str = "127.0.0.1", registry: CollectorRegistry | None = None
) -> tuple[Any, threading.Thread]:
    """Serve ``/metrics`` on a separate port, bound to *addr* (loopback by default).

    Keeping metrics off the public port is the simplest way to keep them private.
    """
    try:
        return start_http_server(
            port, addr=addr, registry=REGISTRY if registry is None else registry
        )
    except OSError as exc:
        raise ObsError(
            f"cannot serve metrics on {addr}:{port} ({exc.strerror}); "
            "choose a free port or stop what listens there."
        ) from exc
