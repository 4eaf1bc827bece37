"""A plain ASGI app, including the misbehaviours servers tolerate: no response, two response
starts, raising CancelledError. A tiny custom router reports its template through
``obs.asgi.ROUTE_KEY``."""

from __future__ import annotations

import asyncio
from typing import Any

import obs
from obs.asgi import ROUTE_KEY, ObservabilityMiddleware, make_metrics_app

obs.configure_logging(service_name="conformance-plain")
log = obs.get_logger("conformance")
metrics = make_metrics_app()


async def text(send: Any, body: bytes, status: int = 200) -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def inner(scope: Any, receive: Any, send: Any) -> None:
    path = scope["path"]
    if path == "/metrics":
        scope[ROUTE_KEY] = "/metrics"
        await metrics(scope, receive, send)
    elif path.startswith("/users/"):
        scope[ROUTE_KEY] = "/users/{id}"
        log.info("handler")
        await text(send, b"user")
    elif path == "/no-response":
        return
    elif path == "/two-starts":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            await send({"type": "http.response.start", "status": 404, "headers": []})
        except Exception:
            pass  # the server refuses it: the client has the 200
        await send({"type": "http.response.body", "body": b"first"})
    elif path == "/cancelled":
        raise asyncio.CancelledError()
    elif path == "/boom":
        raise RuntimeError("boom")
    elif path == "/slow-stream":
        await slow_stream(receive, send)
    else:
        log.info("handler")  # never routed: the line has no route to carry
        await text(send, b"plain")


async def slow_stream(receive: Any, send: Any) -> None:
    """Stream until done or until the server says the client left (uvicorn drops the sends
    of a gone client silently: only ``receive`` tells)."""

    async def client_left() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    listener = asyncio.ensure_future(client_left())
    try:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(60):
            await asyncio.sleep(0.05)
            if listener.done():
                return
            await send({"type": "http.response.body", "body": b"chunk %d\n" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        listener.cancel()


app = ObservabilityMiddleware(inner)
