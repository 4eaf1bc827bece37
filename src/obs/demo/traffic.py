"""Mixed traffic for the demo: a few client threads on keep-alive connections, bounded in time."""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

# (weight, path maker): mostly fast reads, some slow, failing, missing and streaming requests.
_MIX: list[tuple[int, str]] = [
    (45, "/items/{n}"),
    (8, "/items/{missing}"),
    (10, "/report"),
    (10, "/slow"),
    (8, "/checkout"),
    (6, "/events"),
    (4, "/admin/{junk}"),
]


@dataclass
class TrafficStats:
    """What the clients sent and got back."""

    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    tagged_ids: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _path(template: str, rng: random.Random) -> str:
    return template.format(
        n=rng.randint(1, 100), missing=rng.randint(1000, 9999), junk=rng.getrandbits(32)
    )


def _client(port: int, deadline: float, stats: TrafficStats, seed: int) -> None:
    rng = random.Random(seed)
    weights = [w for w, _ in _MIX]
    templates = [t for _, t in _MIX]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    n = 0
    while time.monotonic() < deadline:
        path = _path(rng.choices(templates, weights)[0], rng)
        headers = {"User-Agent": "obs-demo-traffic"}
        if n % 50 == 0:  # a few requests arrive with an upstream id, as behind a proxy
            headers["X-Request-ID"] = f"demo-{seed}-{n}"
        n += 1
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            status = response.status
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
        except (OSError, http.client.HTTPException):
            conn.close()  # the server closes a connection whose request raised; reconnect
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            with stats.lock:
                stats.errors += 1
            continue
        with stats.lock:
            stats.sent += 1
            stats.statuses[status] += 1
            if "X-Request-ID" in headers:
                stats.tagged_ids.append(headers["X-Request-ID"])
    conn.close()


def start_traffic(port: int, seconds: float, clients: int = 3) -> tuple[list[threading.Thread], TrafficStats]:
    """Start *clients* threads sending requests for *seconds*; join the threads to wait."""
    stats = TrafficStats()
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(target=_client, args=(port, deadline, stats, i), daemon=True)
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    return threads, stats
