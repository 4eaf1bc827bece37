"""Flask behind obs with slow-request profiles on, served by a real gunicorn (sync, gthread)."""

from __future__ import annotations

from flask import Flask, request
from slow_work import COMPUTE, WAIT, blocking_wait_function, cpu_heavy_function

import obs
from obs.integrations.flask import instrument

obs.configure_logging(service_name="slow-flask")

app = Flask(__name__)


@app.get("/compute")
def compute() -> dict[str, int]:
    return {"n": cpu_heavy_function(float(request.args.get("seconds", 0.3)))}


@app.get("/sleep")
def sleep() -> dict[str, str]:
    blocking_wait_function(float(request.args.get("seconds", 0.3)))
    return {"ok": "slept"}


@app.get("/many/<int:i>")
def many(i: int) -> dict[str, int]:
    seconds = float(request.args["seconds"])
    if i % 2:
        WAIT[i](seconds)
    else:
        COMPUTE[i](seconds)
    return {"i": i}


instrument(app)
