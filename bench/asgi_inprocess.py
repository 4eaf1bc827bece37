"""Section 1: µs per request through each ASGI stack, driven in-process.

Each app is called directly with a prebuilt scope (copied per request, since routers write
into it) and no-op ``receive``/``send``: no server, no sockets, only the framework and the
middleware. Access lines go to /dev/null. Measured with one route and with 50 routes, the
measured one registered last.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench.apps import ASGI_VARIANTS, MEASURED_PATH
from bench.common import Batch, Rounds, missing, section_main

SCOPE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0", "spec_version": "2.3"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": MEASURED_PATH,
    "raw_path": MEASURED_PATH.encode(),
    "query_string": b"",
    "root_path": "",
    "headers": [
        (b"host", b"127.0.0.1:8000"),
        (b"user-agent", b"bench/1.0"),
        (b"accept", b"*/*"),
    ],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8000),
}

_REQUEST = {"type": "http.request", "body": b"", "more_body": False}


async def _receive() -> dict[str, Any]:
    return _REQUEST


async def _send(message: Any) -> None:
    return None


def asgi_batch(app: Any, loop: asyncio.AbstractEventLoop, scope: dict[str, Any]) -> Batch:
    async def requests(n: int) -> float:
        clock = time.perf_counter
        start = clock()
        for _ in range(n):
            await app(dict(scope), _receive, _send)
        return clock() - start

    def batch(n: int) -> float:
        return loop.run_until_complete(requests(n))

    return batch


def check_response(app: Any, loop: asyncio.AbstractEventLoop) -> None:
    """Fail loudly if a variant does not answer 200 (a broken set-up would look fast)."""
    statuses: list[int] = []

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    loop.run_until_complete(app(dict(SCOPE), _receive, send))
    if statuses != [200]:
        raise RuntimeError(f"{app!r} answered {statuses}, expected [200]")


def run(quick: bool) -> dict[str, Any]:
    n, rounds = (300, 3) if quick else (2000, 15)
    loop = asyncio.new_event_loop()
    result: dict[str, Any] = {"n_per_round": n, "rounds": rounds, "skipped": {}, "routes": {}}
    for routes in (1, 50):
        batches: dict[str, Batch] = {}
        baselines: dict[str, str | None] = {}
        for name, (build, baseline, module) in ASGI_VARIANTS.items():
            reason = missing(module)
            if reason is not None:
                result["skipped"][name] = reason
                continue
            app = build(routes)
            check_response(app, loop)
            batches[name] = asgi_batch(app, loop, SCOPE)
            baselines[name] = baseline
        measured = Rounds()
        measured.run(batches, n=n, rounds=rounds)
        table: dict[str, Any] = {}
        for name, baseline in baselines.items():
            row: dict[str, Any] = {"us_per_request": measured.figure(name), "baseline": baseline}
            if baseline is not None and baseline in batches:
                row["overhead_us"] = measured.overhead(name, baseline)
            table[name] = row
        result["routes"][str(routes)] = table
    loop.close()
    return result


if __name__ == "__main__":
    section_main(run)
