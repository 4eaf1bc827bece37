"""WSGI per-request overhead: bare Flask, prometheus-flask-exporter and obs, in one run.

    python -m bench.bench_wsgi [--requests 20000] [--rounds 7]

Each variant is the same one-route Flask app called in-process the way a WSGI server calls it
(environ, ``start_response``, iterate, ``close()``), so the numbers are the instrumentation's
cost without network noise. Rounds are interleaved and the best round of each variant is kept.
obs runs in its full default configuration: request ids, RED metrics with exemplars and one
JSON access line per request (written to /dev/null).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any
from wsgiref.util import setup_testing_defaults

from flask import Flask
from prometheus_client import CollectorRegistry

import obs
from obs.integrations.flask import instrument

TARGET_US = 10.0


def make_flask() -> Flask:
    app = Flask("bench")

    @app.get("/items/<item_id>")
    def item(item_id: str) -> dict[str, str]:
        return {"item_id": item_id}

    return app


def variants() -> dict[str, Callable[[dict[str, Any], Any], Any]]:
    out: dict[str, Callable[[dict[str, Any], Any], Any]] = {"bare flask": make_flask()}
    try:
        from prometheus_flask_exporter import PrometheusMetrics
    except ImportError:
        print("prometheus-flask-exporter is not installed: pip install prometheus-flask-exporter")
    else:
        app = make_flask()
        PrometheusMetrics(app, registry=CollectorRegistry())
        out["prometheus-flask-exporter"] = app
    out["obs (full default)"] = instrument(
        make_flask(), registry=CollectorRegistry(), metrics_path=None
    )
    out["obs (metrics only)"] = instrument(
        make_flask(),
        registry=CollectorRegistry(),
        metrics_path=None,
        access_log=False,
        request_ids=False,
    )
    return out


def start_response(status: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], None]:
    return lambda data: None


def per_request_us(app: Callable[[dict[str, Any], Any], Any], requests: int) -> float:
    template: dict[str, Any] = {"PATH_INFO": "/items/42", "REQUEST_METHOD": "GET"}
    setup_testing_defaults(template)
    started = time.perf_counter()
    for _ in range(requests):
        result = app(dict(template), start_response)
        for _chunk in result:
            pass
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return (time.perf_counter() - started) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the run
    obs.configure_logging(service_name="bench", log_format="json", stream=devnull)
    apps = variants()
    best = {name: float("inf") for name in apps}
    for app in apps.values():  # warm-up
        per_request_us(app, 2000)
    for _ in range(args.rounds):
        for name, app in apps.items():
            best[name] = min(best[name], per_request_us(app, args.requests))
    bare = best["bare flask"]
    print(f"{'variant':30} {'µs/request':>11} {'overhead µs':>12}")
    for name, value in best.items():
        print(f"{name:30} {value:11.1f} {value - bare:12.1f}")
    overhead = best["obs (full default)"] - bare
    verdict = "met" if overhead <= TARGET_US else "NOT met"
    print(
        f"target: obs full default adds at most {TARGET_US:.0f} µs -> {verdict} ({overhead:.1f} µs)"
    )


if __name__ == "__main__":
    main()
