"""The applications under test, one builder per variant, shared by the in-process and HTTP
sections (uvicorn and gunicorn import the ``*_app`` factories by name).

Every app answers ``GET /users/{user_id}`` with a small plain-text body. With ``routes=50``,
49 other parameterised routes are registered first and the measured one last, so a middleware
that re-matches routes on every request pays for all of them. Peer set-ups follow each
project's documented usage; anything not installed raises ``ImportError``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from functools import cache
from typing import Any

MEASURED_PATH = "/users/42"
DEVNULL = os.devnull


# -- ASGI -------------------------------------------------------------------------------------


def _starlette(routes: int) -> Any:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def user(request: Any) -> Any:
        return PlainTextResponse("ok")

    async def other(request: Any) -> Any:
        return PlainTextResponse("other")

    table = [Route(f"/items{i}/{{item_id}}", other) for i in range(routes - 1)]
    table.append(Route("/users/{user_id}", user))
    return Starlette(routes=table)


def _fastapi(routes: int) -> Any:
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    app = FastAPI()
    for i in range(routes - 1):

        async def other(item_id: str) -> Any:
            return PlainTextResponse("other")

        app.add_api_route(f"/items{i}/{{item_id}}", other, methods=["GET"])

    async def user(user_id: int) -> Any:
        return PlainTextResponse("ok")

    app.add_api_route("/users/{user_id}", user, methods=["GET"])
    return app


#: Set by the over-HTTP section: log lines go to stdout (a pipe another process reads), as
#: in a container, instead of /dev/null.
LOG_TO_STDOUT = "BENCH_LOG_TO_STDOUT"


def _log_stream() -> Any:
    import sys

    if os.environ.get(LOG_TO_STDOUT):
        return sys.stdout
    return open(DEVNULL, "w", buffering=1)  # lives as long as the process


@cache
def configure_obs_logging() -> None:
    """obs writes its JSON lines to /dev/null in the in-process benchmarks, line-buffered as
    ``configure_logging()`` makes stdout (so each line is one write, no extra flush); over
    HTTP to stdout itself."""
    from obs import configure_logging

    configure_logging(service_name="bench", log_format="json", stream=_log_stream())


def bare_starlette(routes: int = 1) -> Any:
    return _starlette(routes)


def bare_fastapi(routes: int = 1) -> Any:
    return _fastapi(routes)


def obs_metrics_only(routes: int = 1) -> Any:
    from prometheus_client import CollectorRegistry

    from obs.asgi import ObservabilityMiddleware

    configure_obs_logging()
    app = _starlette(routes)
    app.add_middleware(
        ObservabilityMiddleware, registry=CollectorRegistry(), access_log=False, request_ids=False
    )
    return app


def obs_default(routes: int = 1) -> Any:
    from prometheus_client import CollectorRegistry

    from obs.asgi import ObservabilityMiddleware

    configure_obs_logging()
    app = _starlette(routes)
    app.add_middleware(ObservabilityMiddleware, registry=CollectorRegistry())
    return app


def starlette_exporter(routes: int = 1) -> Any:
    from starlette_exporter import PrometheusMiddleware

    app = _starlette(routes)
    app.add_middleware(PrometheusMiddleware)
    return app


def fastapi_instrumentator(routes: int = 1) -> Any:
    from prometheus_client import CollectorRegistry
    from prometheus_fastapi_instrumentator import Instrumentator

    app = _fastapi(routes)
    Instrumentator(registry=CollectorRegistry()).instrument(app)
    return app


@cache
def _otel_providers() -> tuple[Any, Any]:
    """Metrics exported through a Prometheus reader; every trace sampled off."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    return (
        TracerProvider(sampler=ALWAYS_OFF),
        MeterProvider(metric_readers=[PrometheusMetricReader()]),
    )


def otel_asgi(routes: int = 1) -> Any:
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    tracer_provider, meter_provider = _otel_providers()
    app = _starlette(routes)
    app.add_middleware(
        OpenTelemetryMiddleware, tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    return app


@cache
def _structlog_access_logger() -> Any:
    """structlog's JSON set-up, writing to /dev/null (stdout over HTTP), independent of obs's
    global config."""
    import structlog

    return structlog.wrap_logger(
        structlog.WriteLogger(_log_stream()),
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )


class StructlogAccessLog:
    """The usual recipe next to asgi-correlation-id: one structlog line per request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.log = _structlog_access_logger()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from asgi_correlation_id import correlation_id

        start = time.perf_counter()
        status = 500

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - start) * 1000, 3),
                request_id=correlation_id.get(),
            )


def correlation_id_structlog(routes: int = 1) -> Any:
    from asgi_correlation_id import CorrelationIdMiddleware

    app = _starlette(routes)
    app.add_middleware(StructlogAccessLog)
    app.add_middleware(CorrelationIdMiddleware)  # added last: outermost, sets the id first
    return app


def exporter_and_correlation_id(routes: int = 1) -> Any:
    """starlette-exporter + asgi-correlation-id + structlog: what obs default replaces."""
    from asgi_correlation_id import CorrelationIdMiddleware
    from starlette_exporter import PrometheusMiddleware

    app = _starlette(routes)
    app.add_middleware(PrometheusMiddleware)
    app.add_middleware(StructlogAccessLog)
    app.add_middleware(CorrelationIdMiddleware)
    return app


#: name -> (builder, baseline name, import that must succeed)
ASGI_VARIANTS: dict[str, tuple[Callable[[int], Any], str | None, str]] = {
    "starlette (bare)": (bare_starlette, None, "starlette"),
    "obs metrics-only": (obs_metrics_only, "starlette (bare)", "obs"),
    "obs default": (obs_default, "starlette (bare)", "obs"),
    "starlette-exporter": (starlette_exporter, "starlette (bare)", "starlette_exporter"),
    "fastapi (bare)": (bare_fastapi, None, "fastapi"),
    "prometheus-fastapi-instrumentator": (
        fastapi_instrumentator,
        "fastapi (bare)",
        "prometheus_fastapi_instrumentator",
    ),
    "opentelemetry asgi": (otel_asgi, "starlette (bare)", "opentelemetry.instrumentation.asgi"),
    "asgi-correlation-id + structlog": (
        correlation_id_structlog,
        "starlette (bare)",
        "asgi_correlation_id",
    ),
    "starlette-exporter + asgi-correlation-id + structlog": (
        exporter_and_correlation_id,
        "starlette (bare)",
        "asgi_correlation_id",
    ),
}


# -- factories for servers (uvicorn --factory / gunicorn 'module:name()') ---------------------


def bare_starlette_app() -> Any:
    return bare_starlette(1)


def obs_default_app() -> Any:
    return obs_default(1)


def starlette_exporter_app() -> Any:
    return starlette_exporter(1)


def fastapi_instrumentator_app() -> Any:
    return fastapi_instrumentator(1)


def bare_fastapi_app() -> Any:
    return bare_fastapi(1)


def exporter_and_correlation_id_app() -> Any:
    return exporter_and_correlation_id(1)


# -- WSGI -------------------------------------------------------------------------------------


def _flask() -> Any:
    from flask import Flask

    app = Flask("bench")

    @app.get("/users/<int:user_id>")
    def user(user_id: int) -> Any:
        return "ok", 200, {"Content-Type": "text/plain"}

    return app


def bare_flask() -> Any:
    return _flask()


def obs_flask() -> Any:
    from prometheus_client import CollectorRegistry

    from obs.integrations.flask import instrument

    configure_obs_logging()
    # As the README sets it up: route templates from Flask's url_rule, /metrics served.
    return instrument(_flask(), registry=CollectorRegistry())


def obs_flask_metrics_only() -> Any:
    from prometheus_client import CollectorRegistry

    from obs.integrations.flask import instrument

    configure_obs_logging()
    return instrument(_flask(), registry=CollectorRegistry(), access_log=False, request_ids=False)


def flask_exporter() -> Any:
    from prometheus_client import CollectorRegistry
    from prometheus_flask_exporter import PrometheusMetrics

    app = _flask()
    PrometheusMetrics(app, registry=CollectorRegistry())
    return app


def otel_wsgi() -> Any:
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware

    tracer_provider, meter_provider = _otel_providers()
    app = _flask()
    app.wsgi_app = OpenTelemetryMiddleware(
        app.wsgi_app, tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    return app


WSGI_VARIANTS: dict[str, tuple[Callable[[], Any], str | None, str]] = {
    "flask (bare)": (bare_flask, None, "flask"),
    "obs metrics-only": (obs_flask_metrics_only, "flask (bare)", "obs.wsgi"),
    "obs default": (obs_flask, "flask (bare)", "obs.wsgi"),
    "prometheus-flask-exporter": (flask_exporter, "flask (bare)", "prometheus_flask_exporter"),
    "opentelemetry wsgi": (otel_wsgi, "flask (bare)", "opentelemetry.instrumentation.wsgi"),
}
