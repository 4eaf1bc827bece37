"""FastAPI behind obs in two layouts whose route templates hold braces, so the probe's
exemplar sits on a series labelled ``http_route="/{path}"`` or ``"/{full_path:path}"``.

``DOCTOR_LAYOUT=mount``: the wrapped app mounted at ``/`` in a Starlette app, as the Starlette
docs mount sub-applications. ``DOCTOR_LAYOUT=spa``: a single-page app's catch-all route.
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from starlette.applications import Starlette
from starlette.routing import Mount

import obs
from obs.asgi import ObservabilityMiddleware, make_metrics_app

obs.configure_logging(service_name="braces-test")

api = FastAPI()
api.add_route("/metrics", make_metrics_app())  # type: ignore[arg-type]  # an ASGI app


if os.environ.get("DOCTOR_LAYOUT") == "spa":

    @api.get("/{full_path:path}")
    async def spa(full_path: str) -> HTMLResponse:
        return HTMLResponse("<div id=app></div>")

    app = ObservabilityMiddleware(api)
else:
    wrapped = ObservabilityMiddleware(api)
    app = Starlette(routes=[Mount("/", app=wrapped)])
