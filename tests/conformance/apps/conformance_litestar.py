"""Litestar laid out as its docs teach: Controllers, Routers with path parameters, guards,
exception handlers; obs's plugin makes handler exceptions visible."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from litestar import Controller, Litestar, MediaType, Request, Response, Router, asgi, get
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Stream

import obs
from obs.asgi import ObservabilityMiddleware, make_metrics_app
from obs.integrations.litestar import ObservabilityPlugin

obs.configure_logging(service_name="conformance-litestar")
log = obs.get_logger("conformance")


class OrderController(Controller):
    path = "/orders"

    @get("/{oid:int}")
    async def get_order(self, oid: int) -> dict[str, int]:
        log.info("handler")
        return {"oid": oid}


@get("/items")
async def tenant_items(tenant: str) -> dict[str, str]:
    log.info("handler")
    return {"tenant": tenant}


def token_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:  # type: ignore[type-arg]
    if connection.headers.get("x-token") != "ok":
        raise NotAuthorizedException()


@get("/secure", guards=[token_guard])
async def secure() -> dict[str, bool]:
    return {"ok": True}


class TeapotError(Exception):
    pass


def teapot_handler(request: Request, exc: TeapotError) -> Response:  # type: ignore[type-arg]
    return Response({"teapot": True}, status_code=418)


@get("/teapot")
async def teapot() -> dict[str, bool]:
    raise TeapotError()


@get("/boom")
async def boom() -> dict[str, bool]:
    raise RuntimeError("boom")


async def chunks(count: int) -> AsyncIterator[bytes]:
    for i in range(count):
        await asyncio.sleep(0.05)
        yield f"chunk {i}\n".encode()


@get("/slow-stream", media_type=MediaType.TEXT)
async def slow_stream() -> Stream:
    return Stream(chunks(60))


tenants = Router(path="/t/{tenant:str}", route_handlers=[tenant_items])
metrics = asgi("/metrics", is_mount=True)(make_metrics_app())
inner = Litestar(
    route_handlers=[OrderController, tenants, secure, teapot, boom, slow_stream, metrics],
    exception_handlers={TeapotError: teapot_handler},
    plugins=[ObservabilityPlugin()],
    logging_config=None,
)
app = ObservabilityMiddleware(inner)
