"""A plain WSGI app without a router behind obs: routes fall back to a bounded label."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import obs
from obs.wsgi import ObservabilityMiddleware, make_metrics_app

obs.configure_logging(service_name="plain-wsgi-test")

metrics = make_metrics_app()


def inner(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/metrics":
        return metrics(environ, start_response)
    if path == "/boom":
        raise RuntimeError("boom")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello ", path.encode("latin-1")]


app = ObservabilityMiddleware(inner)
