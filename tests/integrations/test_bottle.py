"""Bottle: no integration; its matched route is read from ``environ["bottle.route"]``
(:func:`obs.wsgi.route_template`). Apps laid out as Bottle's docs teach: a child app mounted
with ``mount("/api/", child)``, and the whole app mounted under a prefix by a dispatcher."""

from __future__ import annotations

import io

import bottle
from prometheus_client import CollectorRegistry
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client

from obs.wsgi import ObservabilityMiddleware
from tests.conftest import access, count


def shop() -> bottle.Bottle:
    app = bottle.Bottle()

    @app.get("/users/<user_id:int>")
    def user(user_id: int) -> str:
        return f"user {user_id}"

    api = bottle.Bottle()

    @api.get("/items/<name>")
    def item(name: str) -> str:
        return name

    app.mount("/api/", api)
    return app


def test_bottle_routes_are_labelled_with_their_rules(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    def site(environ: dict[str, object], start_response: object) -> list[bytes]:
        raise AssertionError("not reached")

    client = Client(ObservabilityMiddleware(shop(), registry=registry))
    mounted = Client(
        ObservabilityMiddleware(DispatcherMiddleware(site, {"/shop": shop()}), registry=registry)
    )
    assert client.get("/users/7").status_code == 200
    assert client.get("/api/items/pen").status_code == 200
    assert client.get("/nowhere").status_code == 404
    assert mounted.get("/shop/users/8").status_code == 200
    assert mounted.get("/shop/api/items/ink").status_code == 200
    expected = [
        "/users/<user_id:int>",
        "/api/items/<name>",
        "_unmatched",
        "/shop/users/<user_id:int>",
        "/shop/api/items/<name>",
    ]
    assert [line["http_route"] for line in access(log)] == expected
    for template in expected:
        assert count(registry, http_route=template) == 1, template
