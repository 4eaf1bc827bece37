"""A WSGI app behind obs whose failures carry secrets (for gunicorn's own error line)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import obs
from obs.wsgi import ObservabilityMiddleware

obs.configure_logging(service_name="leak-wsgi")


def inner(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO") == "/raise":
        raise RuntimeError("upstream refused token=S3CR3T062x")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


app = ObservabilityMiddleware(inner)
