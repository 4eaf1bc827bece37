"""A plain WSGI app, no framework, behind obs; its tiny router names the route for the metrics.

Run:  gunicorn --chdir examples wsgi_app:app
Then: curl -i localhost:8000/hello/ann ; curl localhost:8000/metrics
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import obs
from obs.wsgi import ROUTE_KEY, ObservabilityMiddleware, make_metrics_app

obs.configure_logging(service_name="wsgi-example")
log = obs.get_logger(__name__)

metrics = make_metrics_app()


def hello(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    name = environ["PATH_INFO"].removeprefix("/hello/")
    log.info("greeting", name=name)
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return [f"hello {name}\n".encode()]


def router(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/metrics":
        return metrics(environ, start_response)
    if path.startswith("/hello/"):
        # The template, not the path, labels the metrics: one series for every name.
        environ[ROUTE_KEY] = "/hello/{name}"
        return hello(environ, start_response)
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found\n"]


app = ObservabilityMiddleware(router)
