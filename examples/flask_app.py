"""Flask behind obs: one call adds request ids, JSON access logs, RED metrics and /metrics.

Run:  gunicorn --chdir examples flask_app:app
Then: curl -i localhost:8000/items/1 ; curl localhost:8000/metrics
"""

from __future__ import annotations

from flask import Flask, abort

import obs
from obs.integrations.flask import instrument

obs.configure_logging(service_name="flask-example")
log = obs.get_logger(__name__)

app = Flask(__name__)


@app.get("/items/<int:item_id>")
def read_item(item_id: int) -> dict[str, int]:
    if item_id > 100:
        abort(404)
    log.info("item read", item_id=item_id)  # carries the request id
    return {"item_id": item_id}


instrument(app)  # also serves /metrics
