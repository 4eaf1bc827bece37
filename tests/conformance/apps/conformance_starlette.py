"""Starlette laid out as its docs teach: Mount with path parameters, nested mounts, Host."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Host, Mount, Route, Router

import obs
from obs.asgi import ObservabilityMiddleware, make_metrics_app

obs.configure_logging(service_name="conformance-starlette")
log = obs.get_logger("conformance")


async def show(request: Request) -> JSONResponse:
    log.info("handler")
    return JSONResponse(request.path_params)


async def boom(request: Request) -> JSONResponse:
    raise RuntimeError("boom")


async def chunks(count: int) -> AsyncIterator[bytes]:
    for i in range(count):
        await asyncio.sleep(0.05)
        yield f"chunk {i}\n".encode()


async def slow_stream(request: Request) -> StreamingResponse:
    return StreamingResponse(chunks(60), media_type="text/plain")


tenant = [
    Route("/items", show),
    Route("/items/{item_id:int}", show),
    Mount("/projects/{project}", routes=[Route("/files/{name}", show)]),
]
api_host = Router(routes=[Route("/h/{z}", show)])

inner = Starlette(
    routes=[
        Route("/items/{item_id}", show),
        Route("/boom", boom),
        Route("/slow-stream", slow_stream),
        Mount("/t/{tenant}", routes=tenant),
        Route("/metrics", make_metrics_app()),
        Host("api.example.test", app=api_host),
    ]
)
app = ObservabilityMiddleware(inner)
