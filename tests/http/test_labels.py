from __future__ import annotations

import threading

from obs.http.labels import RouteLabels, method_label
from obs.metrics import OTHER_METHOD, OVERFLOW_ROUTE, UNMATCHED_ROUTE


def test_methods_outside_the_standard_set_are_other() -> None:
    assert method_label("GET") == "GET"
    assert method_label("patch") == "PATCH"
    assert method_label("BREW") == OTHER_METHOD
    assert method_label("G" * 10_000) == OTHER_METHOD


def test_route_cap() -> None:
    labels = RouteLabels(max_routes=2)
    assert labels(None) == UNMATCHED_ROUTE
    assert labels("/a") == "/a"
    assert labels("/b") == "/b"
    assert labels("/c") == OVERFLOW_ROUTE
    assert labels("/a") == "/a"  # admitted routes stay admitted


def test_route_cap_holds_under_threads() -> None:
    labels = RouteLabels(max_routes=10)
    seen: set[str] = set()
    lock = threading.Lock()

    def work(offset: int) -> None:
        for i in range(200):
            value = labels(f"/r/{offset}/{i}")
            with lock:
                seen.add(value)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen - {OVERFLOW_ROUTE}) == 10
