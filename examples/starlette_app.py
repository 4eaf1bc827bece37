"""Starlette behind obs.

Run:  uvicorn starlette_app:app --app-dir examples --no-access-log
Then: curl -i localhost:8000/users/ann ; curl localhost:8000/metrics
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import obs
from obs.asgi import ObservabilityMiddleware, make_metrics_app

obs.configure_logging(service_name="starlette-example")


async def user(request: Request) -> JSONResponse:
    return JSONResponse({"user": request.path_params["name"]})


app = ObservabilityMiddleware(
    Starlette(routes=[Route("/users/{name}", user), Route("/metrics", make_metrics_app())])
)
