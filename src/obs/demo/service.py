"""The demo's example service: FastAPI behind obs, the way the README tells users to set it up.

Run by ``obs demo`` as ``uvicorn obs.demo.service:app --no-access-log``; routes are fast, slow,
failing and streaming, so every panel of the story has something to show.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator

from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse

import obs
from obs.asgi import ObservabilityMiddleware, make_metrics_app

obs.configure_logging(service_name="obs-demo")
log = obs.get_logger(__name__)

api = FastAPI(title="obs demo shop")
api.add_route("/metrics", make_metrics_app())  # type: ignore[arg-type]  # an ASGI app

CATALOGUE = {i: f"item-{i}" for i in range(1, 101)}


def price_report(rounds: int) -> str:
    """CPU-bound work that shows up in the flame graph."""
    digest = b"seed"
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


@api.get("/items/{item_id}")
async def get_item(item_id: int) -> dict[str, object]:
    if item_id not in CATALOGUE:
        raise HTTPException(status_code=404, detail="no such item")
    return {"id": item_id, "name": CATALOGUE[item_id]}


@api.get("/report")
def report() -> dict[str, str]:  # sync: FastAPI runs it in a thread pool
    digest = price_report(random.randint(20_000, 60_000))
    log.info("report computed", digest=digest[:12])
    return {"digest": digest}


async def wait_for_inventory(delay: float) -> None:
    """A slow dependency: what the slowest request's own flame graph shows it waiting in."""
    await asyncio.sleep(delay)


@api.get("/slow")
async def slow() -> dict[str, float]:
    delay = random.choice([0.05, 0.1, 0.2, 0.4])
    await wait_for_inventory(delay)
    return {"slept": delay}


@api.get("/checkout")
async def checkout() -> dict[str, str]:
    if random.random() < 0.5:
        raise RuntimeError("payment provider timed out")
    return {"status": "paid"}


async def _chunks() -> AsyncIterator[bytes]:
    for i in range(5):
        await asyncio.sleep(0.02)
        yield f"event {i}\n".encode()


@api.get("/events")
async def events() -> StreamingResponse:
    return StreamingResponse(_chunks(), media_type="text/plain")


# The size histograms are opt-in; the demo turns them on so their dashboard panels have data.
app = ObservabilityMiddleware(api, record_body_sizes=True)
