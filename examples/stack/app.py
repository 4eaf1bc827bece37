"""The example service the stack scrapes: a tiny ASGI app under the obs middleware.

Size histograms are on (``record_body_sizes=True``) so the HTTP overview's size panels have data.
Run: ``python app.py`` (port 8000, or ``PORT``); ``/metrics`` serves the registry.
"""

from __future__ import annotations

import asyncio
import os
import random
from typing import Any

from obs import configure_logging, get_logger
from obs.asgi import ObservabilityMiddleware, make_metrics_app

configure_logging(log_format="json")  # service name from OBS_SERVICE_NAME
log = get_logger("shop")
metrics = make_metrics_app()


async def shop(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    if path == "/metrics":
        await metrics(scope, receive, send)
        return
    status, body = 404, b"not found"
    if path.startswith("/orders/"):
        scope["path_template"] = "/orders/{order_id}"
        await asyncio.sleep(random.expovariate(1 / 0.05))
        status, body = 200, b'{"status": "shipped"}'
        if random.random() < 0.02:
            log.error("payment provider timed out", order=path.rsplit("/", 1)[-1])
            status, body = 502, b'{"error": "payment"}'
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


app = ObservabilityMiddleware(shop, record_body_sizes=True)

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="0.0.0.0", port=int(os.environ.get("PORT", "8000")), log_config=None)
