"""A Flask app behind obs, served by a real gunicorn in the integration tests."""

from __future__ import annotations

import time
from collections.abc import Iterator

from flask import Flask, Response

import obs
from obs.integrations.flask import instrument

obs.configure_logging(service_name="flask-test")

app = Flask(__name__)


@app.get("/items/<item_id>")
def item(item_id: str) -> dict[str, str]:
    return {"item_id": item_id}


@app.get("/api/users/<name>")
def user(name: str) -> dict[str, str]:
    return {"user": name}


@app.get("/boom")
def boom() -> str:
    raise RuntimeError("boom")


@app.get("/stream")
def stream() -> Response:
    def chunks() -> Iterator[bytes]:
        for i in range(5):
            time.sleep(0.1)
            yield f"chunk {i}\n".encode()

    return Response(chunks(), mimetype="text/plain")


instrument(app)
