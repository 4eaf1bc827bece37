"""The public API as users write it, type-checked with ``mypy --strict`` by ``make test``.

Never run: mypy fails the build when a public signature changes in a way users would notice
(a renamed argument, a return type that no longer fits, a name that moved).
"""

from __future__ import annotations

import io
from typing import Any

from prometheus_client import CollectorRegistry

import obs
import obs.asgi
import obs.django
import obs.doctor
import obs.gunicorn
import obs.integrations.falcon
import obs.integrations.flask
import obs.integrations.pyramid
import obs.integrations.quart
import obs.metrics
import obs.multiprocess
import obs.wsgi
from obs.config import InvalidEnvironmentError, Settings
from obs.exceptions import ConfigError, ObsError, ProfilingError
from obs.http.options import HeaderLabel, from_header
from obs.profiling import ProfileResult


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    return None


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    return [b""]


def logging_api() -> None:
    settings: Settings = obs.configure_logging(
        service_name="shop", level="info", log_format="json", stream=io.StringIO()
    )
    assert settings.service_name
    log = obs.get_logger("shop")
    log.info("ready", port=8000)


def middleware_api() -> None:
    registry = CollectorRegistry()
    asgi: obs.asgi.ObservabilityMiddleware = obs.asgi.ObservabilityMiddleware(
        asgi_app, registry=registry, access_log=False, max_routes=100, request_ids=True
    )
    wsgi: obs.wsgi.ObservabilityMiddleware = obs.wsgi.ObservabilityMiddleware(
        wsgi_app, registry=registry, record_body_sizes=True
    )
    metrics_asgi: obs.asgi.MetricsApp = obs.asgi.make_metrics_app(registry)
    metrics_wsgi: obs.wsgi.MetricsApp = obs.wsgi.make_metrics_app(
        registry, username="u", password="p"
    )
    tenant: HeaderLabel = from_header("X-Tenant", ["acme", "globex"])
    options: obs.asgi.ObservabilityMiddleware = obs.asgi.ObservabilityMiddleware(
        asgi_app,
        registry=CollectorRegistry(),
        metrics_exclude_paths=["/metrics", "/static/*"],
        exclude_paths=["/health"],
        duration_buckets=[0.1, 1.0],
        request_id_header="X-Correlation-ID",
        request_id_generator=lambda: "id",
        request_id_validator=lambda value: bool(value),
        extra_labels={"tenant": tenant},
    )
    assert options
    route: str | None = obs.asgi.route_template({"type": "http"}, "")
    key: str = obs.wsgi.ROUTE_KEY
    assert asgi and wsgi and metrics_asgi and metrics_wsgi and (route or key)


def metrics_api() -> None:
    metrics: obs.metrics.ObsMetrics = obs.metrics.get_metrics(CollectorRegistry())
    spec: obs.metrics.MetricSpec = obs.metrics.spec(obs.metrics.REQUEST_DURATION)
    buckets: tuple[float, ...] = obs.metrics.DURATION_BUCKETS
    assert metrics and spec.labels and buckets and obs.metrics.CATALOGUE
    rows: tuple[obs.metrics.MetricSpec, ...] = obs.metrics.catalogue(("tenant",))
    stop: type[SystemExit] = InvalidEnvironmentError
    assert rows and stop


def doctor_api() -> None:
    findings: list[obs.doctor.Finding] = obs.doctor.run_checks(url="http://127.0.0.1:8000")
    status: obs.doctor.Status = findings[0].status
    assert status and findings[0].line()


def integrations_api(flask_app: Any) -> None:
    app: Any = obs.integrations.flask.instrument(flask_app, metrics_path="/metrics")
    quart_app: Any = obs.integrations.quart.instrument(flask_app, metrics_path=None)
    falcon_component: obs.integrations.falcon.RouteTemplates = (
        obs.integrations.falcon.RouteTemplates()
    )
    include: Any = obs.integrations.pyramid.includeme
    assert quart_app and falcon_component and include
    middleware: type[Any] = obs.django.ObservabilityMiddleware
    language: str = obs.django.LANGUAGE_PREFIX
    obs.multiprocess.fold_dead_worker(12345)
    hook: Any = obs.gunicorn.child_exit
    assert app and middleware and hook and language


def profiling_api() -> None:
    with obs.profile("block", directory="profiles") as block:
        sum(range(10))
    assert block is not None

    @obs.profiled
    def work() -> int:
        return 1

    result: ProfileResult = ProfileResult.load("profile.json")
    svg: str = result.render("svg")
    assert work() == 1 and svg


def errors_api(exc: Exception) -> int:
    if isinstance(exc, ConfigError | ProfilingError):
        return exc.exit_code
    return 0 if isinstance(exc, ObsError) else 1
