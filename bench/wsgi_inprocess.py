"""Section 2: µs per request through each Flask (WSGI) stack, driven in-process.

Each app is called with a prebuilt environ (copied per request) and a no-op
``start_response``; the body is iterated and closed as a server would. Access lines go to
/dev/null.
"""

from __future__ import annotations

import io
from typing import Any

from bench.apps import MEASURED_PATH, WSGI_VARIANTS
from bench.common import Batch, Rounds, missing, section_main

ENVIRON: dict[str, Any] = {
    "REQUEST_METHOD": "GET",
    "SCRIPT_NAME": "",
    "PATH_INFO": MEASURED_PATH,
    "QUERY_STRING": "",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8000",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1",
    "REMOTE_PORT": "50000",
    "HTTP_HOST": "127.0.0.1:8000",
    "HTTP_USER_AGENT": "bench/1.0",
    "HTTP_ACCEPT": "*/*",
    "wsgi.version": (1, 0),
    "wsgi.url_scheme": "http",
    "wsgi.errors": io.StringIO(),
    "wsgi.multithread": False,
    "wsgi.multiprocess": False,
    "wsgi.run_once": False,
}


def _start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
    return None


def call(app: Any) -> tuple[str, bytes]:
    seen: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        seen.append(status)

    environ = {**ENVIRON, "wsgi.input": io.BytesIO(b"")}
    body = app(environ, start_response)
    try:
        data = b"".join(body)
    finally:
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return seen[0], data


def wsgi_batch(app: Any) -> Batch:
    import time

    def batch(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            environ = {**ENVIRON, "wsgi.input": io.BytesIO(b"")}
            body = app(environ, _start_response)
            for _chunk in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()
        return time.perf_counter() - start

    return batch


def run(quick: bool) -> dict[str, Any]:
    n, rounds = (300, 3) if quick else (2000, 15)
    result: dict[str, Any] = {"n_per_round": n, "rounds": rounds, "skipped": {}, "variants": {}}
    batches: dict[str, Batch] = {}
    baselines: dict[str, str | None] = {}
    for name, (build, baseline, module) in WSGI_VARIANTS.items():
        reason = missing(module)
        if reason is not None:
            result["skipped"][name] = reason
            continue
        app = build()
        status, _ = call(app)
        if not status.startswith("200"):
            raise RuntimeError(f"{name} answered {status}, expected 200")
        batches[name] = wsgi_batch(app)
        baselines[name] = baseline
    measured = Rounds()
    measured.run(batches, n=n, rounds=rounds)
    for name, baseline in baselines.items():
        row: dict[str, Any] = {"us_per_request": measured.figure(name), "baseline": baseline}
        if baseline is not None and baseline in batches:
            row["overhead_us"] = measured.overhead(name, baseline)
        result["variants"][name] = row
    return result


if __name__ == "__main__":
    section_main(run)
