"""A FastAPI app behind obs, served by a real uvicorn in the integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

import obs
from obs.asgi import ObservabilityMiddleware, make_metrics_app

obs.configure_logging(service_name="fastapi-test")

inner = FastAPI()
inner.add_route("/metrics", make_metrics_app())


@inner.get("/items/{item_id}")
async def item(item_id: str) -> dict[str, str]:
    return {"item_id": item_id}


@inner.get("/boom")
async def boom() -> dict[str, str]:
    raise RuntimeError("boom")


async def chunks() -> AsyncIterator[bytes]:
    for i in range(5):
        await asyncio.sleep(0.1)
        yield f"chunk {i}\n".encode()


@inner.get("/stream")
async def stream() -> StreamingResponse:
    return StreamingResponse(chunks(), media_type="text/plain")


@inner.get("/api/users/{name}")
def user(name: str) -> dict[str, str]:  # sync: FastAPI runs it in a thread pool
    return {"user": name}


app = ObservabilityMiddleware(inner)
