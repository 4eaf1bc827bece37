"""Tests as a user of obs writes them for their own app: pytest, Flask's ``test_client()``,
Django's ``Client``, the global registry, stdout; no obs test fixture, no ``close()``.

The apps are built the way each framework's docs teach: a Flask app factory with a blueprint
and the extension's ``init_app``, a Django URLconf with ``include()`` and ``re_path``.
"""

from __future__ import annotations

import io
import json
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from flask import Blueprint, Flask, abort
from prometheus_client import REGISTRY, CollectorRegistry

import obs
from obs.integrations.flask import Observability

pytestmark = pytest.mark.no_context_reset


def requests_counted(**labels: str) -> float:
    """What a user reads: the request counter of the global registry."""
    total = 0.0
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name == "http_server_request_duration_seconds_count" and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                total += sample.value
    return total


def access_lines(out: str) -> list[dict[str, Any]]:
    return [r for r in map(json.loads, out.splitlines()) if r.get("event") == "request"]


# -- Flask: an app factory, a blueprint, the extension -------------------------------------------

observability = Observability()
shop = Blueprint("shop", __name__, url_prefix="/shop")


@shop.get("/items/<int:item_id>")
def item(item_id: int) -> dict[str, int]:
    if item_id == 0:
        abort(404)
    structlog.contextvars.bind_contextvars(customer="c-42")
    return {"item": item_id}


def create_app() -> Flask:
    app = Flask("user_shop")
    app.register_blueprint(shop)
    observability.init_app(app)
    return app


@pytest.fixture
def logs() -> io.StringIO:
    """The app's log lines, as JSON (what it writes to stdout in production)."""
    out = io.StringIO()
    obs.configure_logging(service_name="user-app", log_format="json", stream=out)
    return out


@pytest.fixture
def client(logs: io.StringIO) -> Any:
    return create_app().test_client()


def test_get_counts_the_request(client: Any, logs: io.StringIO) -> None:
    route = "/shop/items/<int:item_id>"
    before = requests_counted(http_route=route, http_response_status_code="200")
    response = client.get("/shop/items/7")
    assert response.json == {"item": 7}
    assert requests_counted(http_route=route, http_response_status_code="200") == before + 1
    (line,) = access_lines(logs.getvalue())
    assert line["http_route"] == route and line["status"] == 200
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert line["customer"] == "c-42"  # what the view bound, on its own request's line


def test_abort_counts_as_its_status(client: Any, logs: io.StringIO) -> None:
    route = "/shop/items/<int:item_id>"
    before = requests_counted(http_route=route, http_response_status_code="404")
    assert client.get("/shop/items/0").status_code == 404
    assert requests_counted(http_route=route, http_response_status_code="404") == before + 1
    (line,) = access_lines(logs.getvalue())
    assert line["status"] == 404 and line["level"] == "warning" and "customer" not in line


def test_several_gets_in_one_test(client: Any, logs: io.StringIO) -> None:
    before = requests_counted(http_route="/shop/items/<int:item_id>")
    for item_id in range(1, 6):
        client.get(f"/shop/items/{item_id}")
    assert requests_counted(http_route="/shop/items/<int:item_id>") == before + 5
    assert len(access_lines(logs.getvalue())) == 5


# -- Django: settings, a URLconf with include() and re_path ---------------------------------------


def _django_urlconf() -> str:
    from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
    from django.urls import include, path, re_path

    def detail(request: HttpRequest, question_id: int) -> HttpResponse:
        return HttpResponse(f"question {question_id}")

    def archive(request: HttpRequest, year: str) -> HttpResponse:
        return HttpResponse(year)

    def feed(request: HttpRequest) -> StreamingHttpResponse:
        def chunks() -> Iterator[bytes]:
            yield b"a"
            yield b"b"

        return StreamingHttpResponse(chunks())

    polls = types.ModuleType("user_site_polls")
    polls.urlpatterns = [  # type: ignore[attr-defined]
        path("<int:question_id>/", detail),
        re_path(r"^archive/(?P<year>[0-9]{4})/$", archive),
        path("feed", feed),
    ]
    site = types.ModuleType("user_site_urls")
    site.urlpatterns = [path("polls/", include(polls))]  # type: ignore[attr-defined]
    sys.modules[site.__name__] = site
    return site.__name__


@pytest.fixture
def django_client(logs: io.StringIO) -> Iterator[Any]:
    import django
    from django.conf import settings
    from django.test import Client, override_settings

    if not settings.configured:
        settings.configure(
            SECRET_KEY="user", ALLOWED_HOSTS=["testserver"], INSTALLED_APPS=[], DATABASES={},
            LOGGING_CONFIG=None,
        )  # fmt: skip
        django.setup()
    with override_settings(
        ROOT_URLCONF=_django_urlconf(),
        MIDDLEWARE=["obs.django.ObservabilityMiddleware"],
        OBS_MIDDLEWARE={},
    ):
        yield Client()


def test_django_get_counts_the_request(django_client: Any, logs: io.StringIO) -> None:
    before = requests_counted(http_route="/polls/<int:question_id>/")
    response = django_client.get("/polls/3/")
    assert response.content == b"question 3"
    assert requests_counted(http_route="/polls/<int:question_id>/") == before + 1
    (line,) = access_lines(logs.getvalue())
    assert line["request_id"] == response.headers["X-Request-ID"] and line["status"] == 200


def test_django_re_path_and_streaming(django_client: Any, logs: io.StringIO) -> None:
    archive = requests_counted(http_route="/polls/archive/{year}/")
    feed = requests_counted(http_route="/polls/feed")
    assert django_client.get("/polls/archive/2024/").status_code == 200
    assert b"".join(django_client.get("/polls/feed").streaming_content) == b"ab"
    assert requests_counted(http_route="/polls/archive/{year}/") == archive + 1
    assert requests_counted(http_route="/polls/feed") == feed + 1
    lines = access_lines(logs.getvalue())
    assert [(r["http_route"], r["bytes_out"]) for r in lines] == [
        ("/polls/archive/{year}/", 4),
        ("/polls/feed", 2),
    ]


# -- FastAPI with a structlog set-up of the user's own ------------------------------------------


def test_fastapi_router_lines_carry_the_route_with_the_users_own_structlog_chain() -> None:
    import asyncio

    import httpx
    from fastapi import APIRouter, FastAPI

    from obs.asgi import ObservabilityMiddleware
    from obs.logs.processors import add_http_route

    out = io.StringIO()
    structlog.configure(  # what the README tells a user who keeps their own structlog set-up
        processors=[
            structlog.contextvars.merge_contextvars,
            add_http_route,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(out),
    )
    log = structlog.get_logger()
    users = APIRouter(prefix="/users")

    @users.get("/{user_id}")
    async def user(user_id: int) -> dict[str, int]:
        log.info("user shown", user_id=user_id)
        return {"user_id": user_id}

    app = FastAPI()
    app.include_router(users, prefix="/v1")
    app.add_middleware(ObservabilityMiddleware, registry=CollectorRegistry(), access_log=False)

    async def get() -> httpx.Response:  # as FastAPI's "Async Tests" docs teach
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/v1/users/3")

    response = asyncio.run(get())
    log.info("after the request")
    shown, after = map(json.loads, out.getvalue().splitlines())
    assert shown["http_route"] == "/v1/users/{user_id}"
    assert shown["request_id"] == response.headers["x-request-id"]
    assert "http_route" not in after and "request_id" not in after
