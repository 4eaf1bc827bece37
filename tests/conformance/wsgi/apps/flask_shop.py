"""A Flask shop laid out as Flask's docs teach: an app factory, blueprints with ``url_prefix``
(one registered twice under two names, one nested in another), error handlers, ``abort()``,
``stream_with_context``; observed by the extension form. Served by gunicorn in the WSGI rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import structlog
from flask import Blueprint, Flask, Response, abort, request, stream_with_context

import obs
from obs.integrations.flask import Observability

obs.configure_logging(service_name="flask-shop")
log = structlog.get_logger("shop")
observability = Observability()

items = Blueprint("items", __name__)


@items.get("/<int:item_id>")
def item(item_id: int) -> dict[str, Any]:
    user = request.args.get("user")
    if user is not None:  # a view binding its own context, as apps do for the user
        structlog.contextvars.bind_contextvars(user_id=user)
    log.info("item viewed", item_id=item_id)
    return {"item": item_id}


@items.get("/<int:item_id>/gone")
def gone(item_id: int) -> str:
    abort(410)


@items.get("/lookup/<key>")
def lookup(key: str) -> str:
    raise LookupError(key)  # handled by the app's error handler: a 404, no exception recorded


admin = Blueprint("admin", __name__, url_prefix="/admin")


@admin.before_request
def only_staff() -> None:
    if request.headers.get("X-Staff") != "yes":
        abort(403)


@admin.get("/panel")
def panel() -> str:
    return "panel"


api = Blueprint("api", __name__, url_prefix="/api")
api.register_blueprint(items, url_prefix="/items")  # nested: /api/items/...


def create_app() -> Flask:
    app = Flask(__name__)
    app.register_blueprint(items, url_prefix="/v1/items", name="items_v1")
    app.register_blueprint(items, url_prefix="/v2/items", name="items_v2")  # the same, twice
    app.register_blueprint(api)
    app.register_blueprint(admin)

    @app.errorhandler(LookupError)
    def missing(exc: LookupError) -> tuple[dict[str, str], int]:
        return {"missing": str(exc)}, 404

    @app.errorhandler(500)
    def server_error(exc: Exception) -> tuple[str, int]:
        return "sorry", 500

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    @app.get("/stream")
    def stream() -> Response:
        @stream_with_context
        def chunks() -> Iterator[str]:
            for i in range(3):
                log.info("chunk", who=request.args.get("who", "?"), i=i)
                yield f"{i}\n"

        return Response(chunks(), mimetype="text/plain")

    @app.get("/own-id")
    def own_id() -> tuple[str, int, dict[str, str]]:
        return "mine", 200, {"X-Request-ID": "chosen-by-the-view"}

    observability.init_app(app)
    observability.init_app(app)  # a second call changes nothing
    return app


app = create_app()
