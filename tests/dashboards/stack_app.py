"""A small ASGI app under the obs middleware, for the live Prometheus test.

Run as ``python stack_app.py PORT``. Routes answer with every status class, raise, log and take
request bodies, so every dashboard query has something to show.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import uvicorn

from obs import configure_logging, get_logger
from obs.asgi import ObservabilityMiddleware, make_metrics_app

configure_logging(service_name="stack-test", log_format="json")
log = get_logger("stack_app")
metrics = make_metrics_app()

ROUTES = {
    "/orders": "/orders/{order_id}",
    "/fail": "/fail",
    "/boom": "/boom",
    "/upload": "/upload",
    "/missing": "/missing",
}


class Boom(RuntimeError):
    pass


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    if path == "/metrics":
        await metrics(scope, receive, send)
        return
    prefix = "/" + path.split("/")[1]
    if prefix in ROUTES:
        scope["path_template"] = ROUTES[prefix]  # as Litestar exposes it
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    status = 200
    if prefix == "/orders":
        await asyncio.sleep(0.002 * (len(path) % 5))
    elif prefix == "/fail":
        log.warning("payment provider refused", provider="test")
        status = 503
    elif prefix == "/boom":
        raise Boom("the handler failed")
    elif prefix == "/missing":
        status = 404
    payload = b"x" * (len(body) * 2 + 10)
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": payload})


observed = ObservabilityMiddleware(app, record_body_sizes=True)

if __name__ == "__main__":
    uvicorn.run(
        observed, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False
    )
