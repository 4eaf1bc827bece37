"""Falcon, WSGI (``falcon.App``) and ASGI (``falcon.asgi.App``), through Falcon's own test
client: :class:`obs.integrations.falcon.RouteTemplates` makes ``req.uri_template`` the route."""

from __future__ import annotations

import io
from typing import Any

import falcon
import falcon.asgi
import falcon.testing
from prometheus_client import CollectorRegistry
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from obs import asgi, wsgi
from obs.integrations.falcon import RouteTemplates
from tests.conftest import access, count


class User:
    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        resp.media = {"user": user_id}


class AsyncUser:
    async def on_get(self, req: Any, resp: Any, user_id: int) -> None:
        resp.media = {"user": user_id}


def wsgi_app() -> falcon.App:
    app = falcon.App(middleware=[RouteTemplates()])
    app.add_route("/users/{user_id:int}", User())
    return app


def asgi_app() -> falcon.asgi.App:
    app = falcon.asgi.App(middleware=[RouteTemplates()])
    app.add_route("/users/{user_id:int}", AsyncUser())
    return app


def routes(log: io.StringIO) -> list[str]:
    return [line["http_route"] for line in access(log)]


def test_falcon_wsgi_routes_are_labelled_with_their_uri_templates(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    client = falcon.testing.TestClient(wsgi.ObservabilityMiddleware(wsgi_app(), registry=registry))
    assert client.simulate_get("/users/7").status_code == 200
    assert client.simulate_post("/users/7").status_code == 405
    assert client.simulate_get("/nowhere").status_code == 404
    # Mounted in an observed site: the app's own middleware joins the site's request.
    site = DispatcherMiddleware(
        wsgi_app(), {"/api": wsgi.ObservabilityMiddleware(wsgi_app(), registry=registry)}
    )
    mounted = falcon.testing.TestClient(wsgi.ObservabilityMiddleware(site, registry=registry))
    assert mounted.simulate_get("/api/users/8").status_code == 200
    assert routes(log) == [
        "/users/{user_id:int}",
        "/users/{user_id:int}",
        "_unmatched",
        "/api/users/{user_id:int}",
    ]
    assert count(registry, http_route="/users/{user_id:int}", http_response_status_code="405") == 1
    assert count(registry, http_route="/api/users/{user_id:int}") == 1
    assert count(registry, http_route="_unmatched") == 1


def test_falcon_asgi_routes_are_labelled_with_their_uri_templates(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    client = falcon.testing.TestClient(asgi.ObservabilityMiddleware(asgi_app(), registry=registry))
    assert client.simulate_get("/users/7").status_code == 200
    assert client.simulate_post("/users/7").status_code == 405
    assert client.simulate_get("/nowhere").status_code == 404
    # Falcon has no mounts, and routes ASGI requests on the whole path (a Starlette Mount
    # leaves its prefix in it, so Falcon answers 404 there): nothing mounted to test.
    assert routes(log) == ["/users/{user_id:int}", "/users/{user_id:int}", "_unmatched"]
    assert count(registry, http_route="/users/{user_id:int}", http_response_status_code="405") == 1
    assert count(registry, http_route="_unmatched") == 1
