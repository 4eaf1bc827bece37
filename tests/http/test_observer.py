"""obs.http.observer: what every middleware's constructor sets up."""

from __future__ import annotations

import io
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import obs
from obs.asgi import ObservabilityMiddleware as AsgiMiddleware
from obs.config import Settings
from obs.wsgi import ObservabilityMiddleware as WsgiMiddleware


def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [b""]


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    pass


def build_info(registry: CollectorRegistry) -> dict[str, float]:
    return {
        sample.labels["service"]: sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name == "obs_build_info"
    }


@pytest.mark.parametrize(
    ("middleware", "app"), [(WsgiMiddleware, wsgi_app), (AsgiMiddleware, asgi_app)]
)
@pytest.mark.parametrize("order", ["logging first", "middleware first"])
def test_build_info_names_the_service_configure_logging_set(
    middleware: Any, app: Any, order: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, it said OBS_SERVICE_NAME's (``unknown_service``), never ``shop``."""
    monkeypatch.delenv("OBS_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    registry, pinned = CollectorRegistry(), CollectorRegistry()
    if order == "logging first":
        obs.configure_logging(service_name="shop", stream=io.StringIO())
        middleware(app, registry=registry)
    else:
        obs.configure_logging(service_name="before", stream=io.StringIO())
        middleware(app, registry=registry)
        assert build_info(registry) == {"before": 1}
        obs.configure_logging(service_name="shop", stream=io.StringIO())
    # Settings given in code win, and stay what they say.
    middleware(app, registry=pinned, settings=Settings.from_env({}, service_name="given"))
    obs.configure_logging(service_name="shop", stream=io.StringIO())
    assert build_info(registry) == {"shop": 1}
    assert build_info(pinned) == {"given": 1}
