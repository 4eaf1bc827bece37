"""FastAPI behind obs: request ids, JSON access logs and RED metrics in three lines.

Run:  uvicorn fastapi_app:app --app-dir examples --no-access-log
Then: curl -i localhost:8000/items/1 ; curl localhost:8000/metrics
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException

import obs
from obs.asgi import ObservabilityMiddleware, make_metrics_app

obs.configure_logging(service_name="fastapi-example")
log = obs.get_logger(__name__)

api = FastAPI()
api.add_route("/metrics", make_metrics_app())  # type: ignore[arg-type]  # an ASGI app


@api.get("/items/{item_id}")
async def read_item(item_id: int) -> dict[str, int]:
    if item_id > 100:
        raise HTTPException(status_code=404, detail="no such item")
    log.info("item read", item_id=item_id)  # carries the request id
    return {"item_id": item_id}


app = ObservabilityMiddleware(api)
