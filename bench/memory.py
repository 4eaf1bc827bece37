"""Section 6: resident memory of an app under obs default after many distinct unmatched paths.

RSS (from /proc/self/statm) after a warm-up, then after 100,000 requests spread over 10,000
distinct paths that no route matches (scanners, typos, ids in paths), all in-process through
obs default on a one-route Starlette app, access lines to /dev/null. It must stay flat: no
cache keyed by raw paths, no label per path.
"""

from __future__ import annotations

import asyncio
import gc
import os
from typing import Any

from bench.apps import obs_default
from bench.asgi_inprocess import SCOPE, _receive
from bench.common import section_main

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


async def _noop_send(message: Any) -> None:
    return None


def run(quick: bool) -> dict[str, Any]:
    total, distinct = (10_000, 1_000) if quick else (100_000, 10_000)
    app = obs_default(1)
    loop = asyncio.new_event_loop()
    paths = [f"/scan/{i:05d}/wp-login.php" for i in range(distinct)]

    async def requests(n: int, offset: int) -> None:
        for i in range(n):
            path = paths[(i + offset) % distinct]
            scope = {**SCOPE, "path": path, "raw_path": path.encode()}
            await app(scope, _receive, _noop_send)

    # Warm-up: the matched route and a first pass over some unmatched paths, so lazily built
    # state (label children, route tables, log pipeline) exists before the baseline.
    loop.run_until_complete(requests(min(distinct, 2_000), 0))
    scope = dict(SCOPE)
    for _ in range(2_000):
        loop.run_until_complete(app(dict(scope), _receive, _noop_send))
    gc.collect()
    before = rss_bytes()
    samples = []
    step = total // 10
    for k in range(10):
        loop.run_until_complete(requests(step, k * step))
        gc.collect()
        samples.append(rss_bytes())
    after = samples[-1]
    loop.close()
    return {
        "requests": total,
        "distinct_unmatched_paths": distinct,
        "rss_mb_after_warmup": round(before / 2**20, 2),
        "rss_mb_after": round(after / 2**20, 2),
        "rss_mb_every_tenth": [round(s / 2**20, 2) for s in samples],
        "growth_percent": round((after - before) / before * 100, 2),
    }


if __name__ == "__main__":
    section_main(run)
