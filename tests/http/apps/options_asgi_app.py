"""A Starlette app behind obs whose middleware arguments come from ``OPTIONS_TEST``, a JSON
object (so one module serves every option test under a real server)."""

from __future__ import annotations

import itertools
import json
import os

from prometheus_client import generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

import obs
from obs.asgi import ObservabilityMiddleware, make_metrics_app
from obs.http.options import from_header

if os.environ.get("OPTIONS_TEST_LOGGING", "1") == "1":
    obs.configure_logging(service_name="options-test")

_counter = itertools.count(1)


async def item(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.path_params["item_id"])


async def boom(request: Request) -> PlainTextResponse:
    raise RuntimeError("boom")


async def plain_metrics(request: Request) -> Response:
    """A text-only metrics endpoint that ignores Accept (what obs doctor must catch)."""
    return Response(generate_latest(), media_type="text/plain; version=0.0.4")


def options() -> dict[str, object]:
    given: dict[str, object] = json.loads(os.environ.get("OPTIONS_TEST", "{}"))
    if given.pop("generator", False):
        given["request_id_generator"] = lambda: f"gen-{next(_counter)}"
    if given.pop("validator", False):
        given["request_id_validator"] = lambda value: value.startswith("ok-")
    labels = given.pop("tenant_label", None)
    if labels is not None:
        given["extra_labels"] = {"tenant": from_header("X-Tenant", labels)}
    return given


inner = Starlette(
    routes=[
        Route("/items/{item_id}", item),
        Route("/boom", boom),
        Route("/static/{name}", item),
        Route("/metrics", make_metrics_app()),
        Route("/plain-metrics", plain_metrics),
    ]
)
# OPTIONS_TEST_BARE=1: no obs middleware at all (responses carry no request id).
app: object = inner
if os.environ.get("OPTIONS_TEST_BARE") != "1":
    app = ObservabilityMiddleware(inner, **options())  # type: ignore[arg-type]
