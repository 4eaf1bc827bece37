"""An ASGI app behind obs whose failures carry secrets (for uvicorn's own lines)."""

from __future__ import annotations

from typing import Any

import obs
from obs.asgi import ObservabilityMiddleware

# uvicorn's own access line kept (obs turns it off by default): its query must be masked too.
obs.configure_logging(service_name="leak-asgi", server_access_logs=True)


async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/raise":
        raise RuntimeError("upstream refused token=S3CR3T062x")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


app = ObservabilityMiddleware(inner)
