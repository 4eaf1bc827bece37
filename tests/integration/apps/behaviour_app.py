"""One Starlette app served twice, bare and behind obs, to show obs changes nothing but a header."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

import obs
from obs.asgi import ObservabilityMiddleware, make_metrics_app

obs.configure_logging(service_name="behaviour")
MARKER = Path(os.environ.get("LIFESPAN_MARKER", os.devnull))


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    with MARKER.open("a") as marker:
        marker.write("startup\n")
    yield
    with MARKER.open("a") as marker:
        marker.write("shutdown\n")


async def text(request: Request) -> Response:
    return PlainTextResponse("hello", headers={"x-app": "1"})


async def empty(request: Request) -> Response:
    return Response(status_code=int(request.path_params["code"]))


async def upload(request: Request) -> Response:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return PlainTextResponse(str(size))


async def events(request: Request) -> Response:
    async def stream() -> AsyncIterator[str]:
        for i in range(5):
            yield f"id: {i}\ndata: tick {i}\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream")


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    async for message in websocket.iter_text():
        await websocket.send_text(message.upper())


bare_app = Starlette(
    routes=[
        Route("/text", text, methods=["GET", "HEAD"]),
        Route("/empty/{code:int}", empty),
        Route("/upload", upload, methods=["POST"]),
        Route("/events", events),
        Route("/metrics", make_metrics_app()),
        WebSocketRoute("/ws", echo),
    ],
    lifespan=lifespan,
)
app = ObservabilityMiddleware(bare_app)
