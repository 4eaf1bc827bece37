"""Litestar behind obs (Litestar's own logging set-up off: obs owns the pipeline).

Run:  uvicorn litestar_app:app --app-dir examples --no-access-log
Then: curl -i localhost:8000/orders/7 ; curl localhost:8000/metrics
"""

from __future__ import annotations

from litestar import Litestar, asgi, get

import obs
from obs.asgi import ObservabilityMiddleware, make_metrics_app

obs.configure_logging(service_name="litestar-example")


@get("/orders/{order_id:int}")
async def order(order_id: int) -> dict[str, int]:
    return {"order_id": order_id}


metrics = asgi("/metrics", is_mount=True)(make_metrics_app())
app = ObservabilityMiddleware(Litestar([order, metrics], logging_config=None))
