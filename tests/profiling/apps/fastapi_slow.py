"""FastAPI behind obs with slow-request profiles on, served by a real uvicorn."""

from __future__ import annotations

from fastapi import FastAPI
from slow_work import (
    COMPUTE,
    SLEEP,
    WAIT,
    blocking_wait_function,
    cpu_heavy_function,
    sleeping_coroutine,
)

import obs
from obs.asgi import ObservabilityMiddleware, make_metrics_app

obs.configure_logging(service_name="slow-fastapi")

inner = FastAPI()
inner.add_route("/metrics", make_metrics_app())


@inner.get("/async/compute")
async def async_compute(seconds: float = 0.3) -> dict[str, int]:
    return {"n": cpu_heavy_function(seconds)}


@inner.get("/async/sleep")
async def async_sleep(seconds: float = 0.3) -> dict[str, str]:
    await sleeping_coroutine(seconds)
    return {"ok": "slept"}


@inner.get("/sync/compute")
def sync_compute(seconds: float = 0.3) -> dict[str, int]:
    return {"n": cpu_heavy_function(seconds)}


@inner.get("/sync/sleep")
def sync_sleep(seconds: float = 0.3) -> dict[str, str]:
    blocking_wait_function(seconds)
    return {"ok": "slept"}


@inner.get("/many/async/{i}")
async def many_async(i: int, seconds: float) -> dict[str, int]:
    await SLEEP[i](seconds)
    return {"i": i}


@inner.get("/many/sync/{i}")
def many_sync(i: int, seconds: float) -> dict[str, int]:
    if i % 2:
        WAIT[i](seconds)
    else:
        COMPUTE[i](seconds)
    return {"i": i}


app = ObservabilityMiddleware(inner)
