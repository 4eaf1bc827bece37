"""gunicorn with several workers whose /metrics add up, from a configuration file of your own.

Any worker answers /metrics with the sum over all of them (exemplars included, in OpenMetrics),
and gunicorn's own log lines come out as JSON like the app's. Here it serves the Flask example;
any WSGI app will do. See docs/multiprocess.md (without a file: gunicorn -c python:obs.gunicorn).

Run:  gunicorn -c examples/gunicorn_conf.py --chdir examples flask_app:app
Then: curl -i localhost:8000/items/1 ; curl -H 'Accept: application/openmetrics-text' localhost:8000/metrics
"""

from __future__ import annotations

from typing import Any

from obs import gunicorn as obs_gunicorn
from obs.gunicorn import *  # noqa: F403  # obs's hooks: multiprocess metrics, JSON logs

workers = 3


def post_fork(server: Any, worker: Any) -> None:
    # A hook of your own replaces obs's: call obs's from it.
    obs_gunicorn.post_fork(server, worker)
    server.log.info("worker %s ready", worker.pid)
