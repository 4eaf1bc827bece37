"""A Litestar app behind obs, served by a real uvicorn in the integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from litestar import Litestar, MediaType, asgi, get
from litestar.response import Stream

import obs
from obs.asgi import ObservabilityMiddleware, make_metrics_app

obs.configure_logging(service_name="litestar-test")


@get("/items/{item_id:str}")
async def item(item_id: str) -> dict[str, str]:
    return {"item_id": item_id}


@get("/boom")
async def boom() -> dict[str, str]:
    raise RuntimeError("boom")


async def chunks() -> AsyncIterator[bytes]:
    for i in range(5):
        await asyncio.sleep(0.1)
        yield f"chunk {i}\n".encode()


@get("/stream", media_type=MediaType.TEXT)
async def stream() -> Stream:
    return Stream(chunks())


@get("/api/users/{name:str}", sync_to_thread=True)
def user(name: str) -> dict[str, str]:
    return {"user": name}


metrics = asgi("/metrics", is_mount=True)(make_metrics_app())

# Litestar configures logging itself unless told not to; obs owns the pipeline here.
inner = Litestar(route_handlers=[item, boom, stream, user, metrics], logging_config=None)
app = ObservabilityMiddleware(inner)
