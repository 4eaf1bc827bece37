"""The integration apps with their metrics on a port of their own (``start_metrics_server``),
as the README's "keep metrics off the public port" shows: every worker calls it at import."""

from __future__ import annotations

import os

from obs.prometheus.exposition import start_metrics_server

if os.environ["METRICS_APP"] == "flask":
    from flask_app import app
else:
    from starlette_app import app  # type: ignore[assignment]

start_metrics_server(int(os.environ["METRICS_PORT"]))

__all__ = ["app"]
