"""The one metrics endpoint behind every ``/metrics`` obs serves.

:class:`MetricsEndpoint` is the pure core: which registry a scrape serves (the one given, else
prometheus_client's global one, or with ``PROMETHEUS_MULTIPROC_DIR`` set the aggregate of all
workers), content negotiation and HTTP basic auth. The ASGI and WSGI ``MetricsApp``, Flask's
route, Django's view and :func:`start_metrics_server` are thin adapters over it, so all of them
answer the same scrape the same way.

Content negotiation follows Prometheus: OpenMetrics (which carries the exemplars that link a
latency bucket to a request id) when the scraper asks for it, the classic text format otherwise;
gzip when accepted.
"""

from __future__ import annotations

import base64
import gzip
import hmac
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any, NamedTuple
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder

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


def gzip_accepted(accept_encoding: str) -> bool:
    """Whether ``Accept-Encoding`` accepts gzip: listed (or ``*``) with a q-value above 0
    (RFC 9110 12.5.3: ``gzip;q=0`` refuses it; prometheus_client's check ignores q-values)."""
    quality: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, *parameters = (part.strip() for part in item.split(";"))
        q = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if coding:
            quality[coding.lower()] = q
    return quality.get("gzip", quality.get("x-gzip", quality.get("*", 0.0))) > 0


#: The methods a metrics endpoint answers; others get a 405 that says so.
ALLOWED_METHODS = ("GET", "HEAD")
_NOT_ALLOWED_BODY = b"method not allowed: GET or HEAD\n"

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


_UNAUTHORIZED_BODY = b"authentication required\n"


class Scrape(NamedTuple):
    """The answer to one scrape, for an adapter to send as its framework sends responses."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


class MetricsEndpoint:
    """What every obs ``/metrics`` endpoint answers: the core its adapters share.

    :param registry: what to serve (default: prometheus_client's global registry, or with
        ``PROMETHEUS_MULTIPROC_DIR`` set the aggregate of all workers, resolved per scrape).
    :param username: with *password*, scrapes need HTTP basic auth (Prometheus: ``basic_auth``
        in the scrape config); checked here, at start-up, not at the first scrape.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.registry = registry
        self._expected_authorization = basic_authorization(username, password)

    def answer(
        self,
        method: str,
        accept: str | None,
        accept_encoding: str | None,
        authorization: str | bytes | None,
    ) -> Scrape:
        """The response to a scrape with these request headers."""
        if method not in ALLOWED_METHODS:  # a POST, PUT or DELETE is not a scrape
            headers = [
                ("Allow", ", ".join(ALLOWED_METHODS)),
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(_NOT_ALLOWED_BODY))),
            ]
            return Scrape(405, "Method Not Allowed", headers, _NOT_ALLOWED_BODY)
        if isinstance(authorization, str):
            authorization = authorization.encode("latin-1", "replace")
        if not authorized(self._expected_authorization, authorization):
            headers = [
                ("WWW-Authenticate", 'Basic realm="metrics", charset="UTF-8"'),
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(_UNAUTHORIZED_BODY))),
            ]
            return Scrape(401, "Unauthorized", headers, _UNAUTHORIZED_BODY)
        body, headers = render(self.registry, accept, accept_encoding)
        return Scrape(200, "OK", headers, b"" if method == "HEAD" else body)

    def wsgi_app(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """The endpoint as a WSGI app (what :func:`start_metrics_server` serves)."""
        scrape = self.answer(
            environ.get("REQUEST_METHOD", "GET"),
            environ.get("HTTP_ACCEPT"),
            environ.get("HTTP_ACCEPT_ENCODING"),
            environ.get("HTTP_AUTHORIZATION"),
        )
        start_response(f"{scrape.status} {scrape.reason}", scrape.headers)
        return [scrape.body]


class _MetricsServer(ThreadingMixIn, WSGIServer):
    """One thread per scrape, none left behind at exit."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """No line per scrape on stderr (wsgiref's default); errors are still reported."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def shares_port(registry: CollectorRegistry | None) -> bool:
    """Whether the workers of one server bind the metrics port together (``SO_REUSEPORT``).

    In multiprocess mode every worker serves the same aggregate, so each worker that calls
    :func:`start_metrics_server` binds the same port and the kernel spreads the scrapes over
    them: without it the second worker fails ("Address already in use"). Linux only, where the
    kernel lets only sockets of the same user that all set the option share a port: a port a
    process of another user holds, or one bound without the option (any other server), still
    fails in one line. A process given its own *registry* serves only itself and keeps the
    port to itself.
    """
    return (
        registry is None
        and bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        and sys.platform.startswith("linux")
        and hasattr(socket, "SO_REUSEPORT")
    )


def start_metrics_server(
    port: int,
    addr: str = "127.0.0.1",
    registry: CollectorRegistry | None = None,
    *,
    username: str | None = None,
    password: str | None = None,
) -> tuple[Any, threading.Thread]:
    """Serve the metrics on a separate port, bound to *addr* (loopback by default).

    Keeping metrics off the public port is the simplest way to keep them private. It serves
    what every other obs endpoint serves (:class:`MetricsEndpoint`): with
    ``PROMETHEUS_MULTIPROC_DIR`` set and no *registry*, the aggregate of all workers, and then
    every worker can call it with the same port (see :func:`shares_port`). Returns the server
    (``server.shutdown()``, then ``server.server_close()``, stops it) and its thread.
    """
    endpoint = MetricsEndpoint(registry, username=username, password=password)
    try:
        family = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM)[0][0]
        attributes = {"address_family": family, "allow_reuse_port": shares_port(registry)}
        server_class = type("MetricsServer", (_MetricsServer,), attributes)
        server: WSGIServer = make_server(
            addr, port, endpoint.wsgi_app, server_class=server_class, handler_class=_QuietHandler
        )
    except OSError as exc:
        raise ObsError(
            f"cannot serve metrics on {addr}:{port} ({exc.strerror}); "
            "choose a free port or stop what listens there."
        ) from exc
    thread = threading.Thread(target=server.serve_forever, name="obs-metrics", daemon=True)
    thread.start()
    return server, thread
