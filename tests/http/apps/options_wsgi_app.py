"""A Flask app instrumented by obs, arguments from ``OPTIONS_TEST`` (JSON), for gunicorn."""

from __future__ import annotations

import json
import os

from flask import Flask

import obs
from obs.http.options import from_header
from obs.integrations.flask import instrument

obs.configure_logging(service_name="options-wsgi-test")

app = Flask(__name__)


@app.get("/items/<item_id>")
def item(item_id: str) -> str:
    return item_id


given: dict[str, object] = json.loads(os.environ.get("OPTIONS_TEST", "{}"))
labels = given.pop("tenant_label", None)
if labels is not None:
    given["extra_labels"] = {"tenant": from_header("X-Tenant", labels)}  # type: ignore[arg-type]
instrument(app, **given)
