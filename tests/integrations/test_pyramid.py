"""Pyramid, through WebOb's request (Pyramid's own way to call an app in tests): routes added
as Pyramid's docs teach, ``config.include(..., route_prefix=...)`` included, and
``config.include("obs.integrations.pyramid")``."""

from __future__ import annotations

import io
from typing import Any

from prometheus_client import CollectorRegistry
from pyramid.config import Configurator
from pyramid.response import Response
from webob import Request

from obs.wsgi import ObservabilityMiddleware
from tests.conftest import access, count


def user(request: Any) -> Response:
    return Response(f"user {request.matchdict['user_id']}")


def items(config: Configurator) -> None:
    config.add_route("item", "/items/{name}")
    config.add_view(lambda request: Response("item"), route_name="item")


def shop() -> Any:
    with Configurator() as config:
        config.include("obs.integrations.pyramid")
        config.add_route("user", "/users/{user_id}")
        config.add_view(user, route_name="user", request_method="GET")
        config.add_route("relative", "orders/{order_id}")  # Pyramid adds the slash
        config.add_view(lambda request: Response("order"), route_name="relative")
        config.include(items, route_prefix="/api")
        return config.make_wsgi_app()


def test_pyramid_routes_are_labelled_with_their_patterns(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    app = ObservabilityMiddleware(shop(), registry=registry)
    assert Request.blank("/users/7").get_response(app).status_code == 200
    assert Request.blank("/api/items/pen").get_response(app).status_code == 200
    assert Request.blank("/orders/9").get_response(app).status_code == 200
    assert Request.blank("/nowhere").get_response(app).status_code == 404
    # Served under a prefix (SCRIPT_NAME): a proxy's, not part of the route.
    prefixed = Request.blank("/users/8", base_url="http://localhost/shop")
    assert prefixed.get_response(app).status_code == 200
    assert [line["http_route"] for line in access(log)] == [
        "/users/{user_id}",
        "/api/items/{name}",
        "/orders/{order_id}",
        "_unmatched",
        "/users/{user_id}",
    ]
    assert count(registry, http_route="/users/{user_id}") == 2
    assert count(registry, http_route="/api/items/{name}") == 1
    assert count(registry, http_route="_unmatched") == 1
