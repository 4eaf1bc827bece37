"""A WSGI app behind obs answering with the status its path asks for (new label sets on demand)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import obs
from obs.wsgi import ObservabilityMiddleware, make_metrics_app

obs.configure_logging(service_name="disk-app")
metrics = make_metrics_app()


def inner(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/metrics":
        return metrics(environ, start_response)
    code = path.rsplit("/", 1)[-1]
    status = int(code) if code.isdigit() and 200 <= int(code) < 600 else 200
    start_response(f"{status} X", [("Content-Type", "text/plain")])
    return [code.encode()]


app = ObservabilityMiddleware(inner)
