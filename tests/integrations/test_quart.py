"""Quart, through its own ``test_client()``: a blueprint with a ``url_prefix`` as Quart's docs
teach, and :func:`obs.integrations.quart.instrument`."""

from __future__ import annotations

import asyncio
import io

import pytest
from prometheus_client import CollectorRegistry
from quart import Blueprint, Quart
from starlette.applications import Starlette
from starlette.routing import Mount

from obs.asgi import ObservabilityMiddleware
from obs.integrations.quart import instrument
from tests.asgi_client import request
from tests.conftest import access, count


def shop() -> Quart:
    app = Quart("shop")

    @app.get("/users/<int:user_id>")
    async def user(user_id: int) -> dict[str, int]:
        return {"user": user_id}

    @app.get("/boom")
    async def boom() -> str:
        raise RuntimeError("boom")

    api = Blueprint("api", __name__, url_prefix="/api")

    @api.get("/items/<name>")
    async def item(name: str) -> dict[str, str]:
        return {"item": name}

    app.register_blueprint(api)
    return app


def test_quart_routes_are_labelled_with_their_rules(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    app = instrument(shop(), registry=registry)
    assert instrument(app, registry=registry) is app  # idempotent

    async def drive() -> list[int]:
        client = app.test_client()
        paths = ["/users/7", "/api/items/pen", "/nowhere", "/boom", "/metrics"]
        return [(await client.get(path)).status_code for path in paths]

    assert asyncio.run(drive()) == [200, 200, 404, 500, 200]
    # Mounted under Starlette: the mount's template comes first.
    outer = Starlette(routes=[Mount("/shop", app=instrument(shop(), registry=registry))])
    assert request(ObservabilityMiddleware(outer, registry=registry), "/shop/users/8").status == 200
    lines = access(log)
    assert [line["http_route"] for line in lines] == [
        "/users/<int:user_id>",
        "/api/items/<name>",
        "_unmatched",
        "/boom",
        "/shop/users/<int:user_id>",
    ]
    assert lines[3]["error_type"] == "RuntimeError"
    assert count(registry, http_route="/users/<int:user_id>") == 1
    assert count(registry, http_route="/shop/users/<int:user_id>") == 1
    assert count(registry, http_route="_unmatched") == 1


def test_instrument_refuses_what_is_not_a_quart_app() -> None:
    with pytest.raises(TypeError, match="not a Quart app"):
        instrument(Starlette())


def test_a_views_traceback_is_written_once_in_the_access_line(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    """Before, Quart's own ``Exception on request GET /boom`` line (app.logger) carried it too;
    on a path without an access line Quart's line keeps it."""
    import json

    from obs.config import Settings

    app = shop()

    @app.get("/health")  # excluded from the access log by default
    async def health() -> str:
        raise ValueError("health")

    instrument(app, registry=registry, settings=Settings.from_env({}))

    async def drive() -> None:
        client = app.test_client()
        await client.get("/boom")
        await client.get("/health")

    asyncio.run(drive())
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    with_traceback = [r["event"] for r in lines if "exception" in r]
    (access_line,) = access(log)
    assert with_traceback == ["request", "Exception on request GET /health"]
    quart_line = next(r for r in lines if r["event"] == "Exception on request GET /boom")
    assert quart_line["request_id"] == access_line["request_id"]
