"""A Starlette app behind obs, served by a real uvicorn in the integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Mount, Route

import obs
from obs.asgi import ObservabilityMiddleware, make_metrics_app

obs.configure_logging(service_name="starlette-test")


async def item(request: Request) -> JSONResponse:
    return JSONResponse({"item_id": request.path_params["item_id"]})


async def boom(request: Request) -> JSONResponse:
    raise RuntimeError("boom")


async def chunks() -> AsyncIterator[bytes]:
    for i in range(5):
        await asyncio.sleep(0.1)
        yield f"chunk {i}\n".encode()


async def stream(request: Request) -> StreamingResponse:
    return StreamingResponse(chunks(), media_type="text/plain")


async def user(request: Request) -> JSONResponse:
    return JSONResponse({"user": request.path_params["name"]})


inner = Starlette(
    routes=[
        Route("/items/{item_id}", item),
        Route("/boom", boom),
        Route("/stream", stream),
        Mount("/api", routes=[Route("/users/{name}", user)]),
        Route("/metrics", make_metrics_app()),
    ]
)
app = ObservabilityMiddleware(inner)
