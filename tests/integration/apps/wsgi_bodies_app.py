"""A plain WSGI app behind obs with the bodies a server treats specially: a one-chunk list
without ``Content-Length``, ``wsgi.file_wrapper``, and a long stream a client can hang up on."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import obs
from obs.wsgi import ObservabilityMiddleware, make_metrics_app

obs.configure_logging(service_name="wsgi-bodies-test")

metrics = make_metrics_app()
#: The file /file serves: this module, whose size the test compares with Content-Length.
FILE = __file__
STREAM_CHUNK = b"x" * 65536


def inner(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/metrics":
        return metrics(environ, start_response)
    start_response("200 OK", [("Content-Type", "text/plain")])
    if path == "/file":
        return environ["wsgi.file_wrapper"](open(FILE, "rb"))  # type: ignore[no-any-return]
    if path == "/stream":  # 200 chunks of 64 KiB over about 2 s: a client can leave midway

        def chunks() -> Iterator[bytes]:
            for _ in range(200):
                time.sleep(0.01)
                yield STREAM_CHUNK

        return chunks()
    return [b"hello world"]


app = ObservabilityMiddleware(inner)
