"""FastAPI laid out as its docs teach: routers included under prefixes, nested routers,
dependencies, exception handlers, a mounted sub-app, static files, a websocket, background
tasks, streaming."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

import obs
from obs.asgi import ObservabilityMiddleware, make_metrics_app

obs.configure_logging(service_name="conformance-fastapi")
log = obs.get_logger("conformance")

users = APIRouter()


@users.get("/{user_id}")
async def get_user(user_id: str) -> dict[str, str]:
    log.info("handler")
    return {"user_id": user_id}


orders = APIRouter(prefix="/orders")


@orders.get("/{oid}")
def get_order(oid: int) -> dict[str, int]:  # sync: run in a thread pool
    log.info("handler")
    return {"oid": oid}


v1 = APIRouter(prefix="/v1")
v1.include_router(orders)


def require_token(request: Request) -> None:
    if request.headers.get("x-token") != "ok":
        raise HTTPException(status_code=403, detail="no token")


class TeapotError(Exception):
    pass


sub = FastAPI()


@sub.get("/things/{tid}")
async def thing(tid: str) -> dict[str, str]:
    log.info("handler")
    return {"tid": tid}


api = FastAPI()
api.include_router(users, prefix="/users")
api.include_router(users, prefix="/admins")
api.include_router(v1)
api.mount("/sub", sub)
api.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
api.add_route("/metrics", make_metrics_app())


@api.exception_handler(TeapotError)
async def teapot_handler(request: Request, exc: TeapotError) -> JSONResponse:
    return JSONResponse({"teapot": True}, status_code=418)


@api.get("/secure", dependencies=[Depends(require_token)])
async def secure() -> dict[str, bool]:
    return {"ok": True}


@api.get("/teapot")
async def teapot() -> dict[str, bool]:
    raise TeapotError()


@api.get("/boom")
async def boom() -> dict[str, bool]:
    raise RuntimeError("boom")


async def later() -> None:
    """A background task: it runs after the response went out, still in its request."""
    await asyncio.sleep(0.05)
    log.info("handler")


@api.get("/background")
async def background(tasks: BackgroundTasks) -> dict[str, bool]:
    tasks.add_task(later)
    return {"queued": True}


async def chunks(count: int) -> AsyncIterator[bytes]:
    for i in range(count):
        await asyncio.sleep(0.05)
        yield f"chunk {i}\n".encode()


@api.get("/stream")
async def stream() -> StreamingResponse:
    return StreamingResponse(chunks(3), media_type="text/plain")


@api.get("/slow-stream")
async def slow_stream() -> StreamingResponse:
    return StreamingResponse(chunks(60), media_type="text/plain")


@api.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(await websocket.receive_text())
    await websocket.close()


app = ObservabilityMiddleware(api)
