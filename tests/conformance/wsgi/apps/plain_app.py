"""A plain WSGI app without a router, of the shapes people write by hand: a list body, a
generator, an exception before ``start_response`` and after it, its own ``X-Request-ID``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import structlog

import obs
from obs.wsgi import ObservabilityMiddleware, make_metrics_app

obs.configure_logging(service_name="plain-wsgi")
log = structlog.get_logger("plain")
metrics = make_metrics_app()


def inner(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/metrics":
        return metrics(environ, start_response)
    if path == "/early":
        raise RuntimeError("before start_response")
    if path == "/late":
        start_response("200 OK", [("Content-Type", "text/plain")])
        raise ValueError("after start_response")
    if path == "/own-id":
        start_response("200 OK", [("X-Request-ID", "chosen-by-the-app")])
        return [b"mine"]
    if path == "/gen":

        def chunks() -> Iterator[bytes]:
            log.info("generating")
            yield b"a"
            yield b"b"

        start_response("200 OK", [("Content-Type", "text/plain")])
        return chunks()
    log.info("hello")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


app = ObservabilityMiddleware(inner)
