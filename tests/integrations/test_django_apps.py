"""Django REST framework and django-ninja apps laid out as their docs teach, under obs.django:
routers, viewsets with extra actions, format suffixes, APIView errors, auth failures, ninja's
routers with path parameters. Each keeps its view's route template, whatever the status."""

from __future__ import annotations

import io
import sys
import types
from collections.abc import Iterator
from typing import Any, ClassVar

import django
import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import include, path
from prometheus_client import CollectorRegistry

from obs.config import Settings
from tests.conftest import access, count

if not settings.configured:
    settings.configure(
        SECRET_KEY="test", ALLOWED_HOSTS=["testserver"], INSTALLED_APPS=[], DATABASES={},
        MIDDLEWARE=[], LOGGING_CONFIG=None,
    )  # fmt: skip
    django.setup()

# Imported after settings are configured (DRF reads them on import); a missing package fails.
from ninja import NinjaAPI, Router
from rest_framework import (
    authentication,
    exceptions,
    permissions,
    renderers,
    routers,
    views,
    viewsets,
)
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

pytestmark = pytest.mark.no_context_reset


class HeaderAuthentication(authentication.BaseAuthentication):
    """``Authorization: Token good`` is a user; any other token is a 401."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        header = request.META.get("HTTP_AUTHORIZATION")
        if header is None:
            return None
        if header != "Token good":
            raise exceptions.AuthenticationFailed("bad token")
        return types.SimpleNamespace(is_authenticated=True), None

    def authenticate_header(self, request: Request) -> str:
        return "Token"


class Nobody(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return False


class ItemViewSet(viewsets.ViewSet):
    # Class attributes: DRF reads its settings' defaults into them at import time.
    authentication_classes: ClassVar[list[Any]] = [HeaderAuthentication]
    renderer_classes: ClassVar[list[Any]] = [renderers.JSONRenderer]
    permission_classes: ClassVar[list[Any]] = [permissions.IsAuthenticatedOrReadOnly]

    def list(self, request: Request, format: str | None = None) -> Response:
        return Response([{"id": 1}])

    def retrieve(self, request: Request, pk: str, format: str | None = None) -> Response:
        if pk == "999":
            raise exceptions.NotFound()
        return Response({"id": pk})

    def create(self, request: Request, format: str | None = None) -> Response:
        raise exceptions.ValidationError({"name": ["required"]})

    @action(detail=True, methods=["post"], permission_classes=[Nobody])
    def archive(self, request: Request, pk: str, format: str | None = None) -> Response:
        return Response({"archived": pk})

    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str, format: str | None = None) -> Response:
        return Response({"published": pk})


class Hello(views.APIView):
    authentication_classes: ClassVar[list[Any]] = [HeaderAuthentication]
    renderer_classes: ClassVar[list[Any]] = [renderers.JSONRenderer]

    def get(self, request: Request, name: str) -> Response:
        if name == "missing":
            raise exceptions.NotFound()
        return Response({"hello": name})


default_router = routers.DefaultRouter()
default_router.register("items", ItemViewSet, basename="item")
simple_router = routers.SimpleRouter()
simple_router.register("things", ItemViewSet, basename="thing")

ninja_api = NinjaAPI(urls_namespace="obs_test_ninja")
shop = Router()


@shop.get("/items/{item_id}")
def ninja_item(request: Any, item_id: int) -> dict[str, int]:
    if item_id == 0:
        from django.http import Http404

        raise Http404("no item")
    return {"id": item_id}


ninja_api.add_router("/shop", shop)

urls = types.ModuleType("obs_test_django_apps_urls")
urls.urlpatterns = [  # type: ignore[attr-defined]
    path("api/", include(default_router.urls)),
    path("simple/", include(simple_router.urls)),
    path("hello/<str:name>/", Hello.as_view()),
    path("ninja/", ninja_api.urls),
]
sys.modules[urls.__name__] = urls


@pytest.fixture
def client(registry: CollectorRegistry) -> Iterator[Client]:
    with override_settings(
        ROOT_URLCONF=urls.__name__,
        MIDDLEWARE=["obs.django.ObservabilityMiddleware"],
        OBS_MIDDLEWARE={"registry": registry, "settings": Settings.from_env({})},
        # No django.contrib.auth in INSTALLED_APPS: no AnonymousUser; the API root view takes
        # its renderers from the settings.
        REST_FRAMEWORK={
            "DEFAULT_AUTHENTICATION_CLASSES": [],
            "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
            "UNAUTHENTICATED_USER": None,
        },
    ):
        yield Client()


def test_drf_router_viewset_actions_suffixes_errors_and_auth_keep_the_route(
    client: Client, registry: CollectorRegistry, log: io.StringIO
) -> None:
    token = {"HTTP_AUTHORIZATION": "Token good"}
    requests = [
        (client.get("/api/"), "/api/", 200),
        (client.get("/api/items/"), "/api/items/", 200),
        (client.get("/api/items/7/"), "/api/items/{pk}/", 200),
        (client.get("/api/items/999/"), "/api/items/{pk}/", 404),  # NotFound
        (client.post("/api/items/", **token), "/api/items/", 400),  # ValidationError
        (client.post("/api/items/7/publish/", **token), "/api/items/{pk}/publish/", 200),
        (client.post("/api/items/7/publish/"), "/api/items/{pk}/publish/", 401),  # no token
        (client.post("/api/items/7/archive/", **token), "/api/items/{pk}/archive/", 403),
        (client.post("/api/items/7/publish/", HTTP_AUTHORIZATION="Token bad"),
         "/api/items/{pk}/publish/", 401),
        # Format suffixes: DRF's regex (\.(?P<format>[a-z0-9]+)/?$) by the re_path rule.
        (client.get("/api/items.json"), "/api/items.{format}/?", 200),
        (client.get("/api/items/7.json"), "/api/items/{pk}.{format}/?", 200),
        (client.get("/simple/things/7/"), "/simple/things/{pk}/", 200),
        (client.get("/hello/ann/"), "/hello/<str:name>/", 200),
        (client.get("/hello/missing/"), "/hello/<str:name>/", 404),
        (client.get("/api/nowhere/"), "_unmatched", 404),
    ]  # fmt: skip
    assert [(r.status_code, route) for r, route, _ in requests] == [
        (status, route) for _, route, status in requests
    ]
    lines = access(log)
    assert [(line["http_route"], line["status"]) for line in lines] == [
        (route, status) for _, route, status in requests
    ]
    assert [line["request_id"] for line in lines] == [
        r.headers["X-Request-ID"] for r, _, _ in requests
    ]
    assert count(registry, http_route="/api/items/{pk}/", http_response_status_code="404") == 1
    assert (
        count(registry, http_route="/api/items/{pk}/publish/", http_response_status_code="401") == 2
    )
    assert count(registry) == len(requests)


def test_ninja_router_path_parameters_keep_the_route(
    client: Client, registry: CollectorRegistry, log: io.StringIO
) -> None:
    assert client.get("/ninja/shop/items/5").json() == {"id": 5}
    assert client.get("/ninja/shop/items/0").status_code == 404  # Http404 in the operation
    assert client.get("/ninja/shop/items/x").status_code == 422  # ninja's validation
    assert client.get("/ninja/nowhere").status_code == 404
    assert [(line["http_route"], line["status"]) for line in access(log)] == [
        ("/ninja/shop/items/<item_id>", 200),
        ("/ninja/shop/items/<item_id>", 404),
        ("/ninja/shop/items/<item_id>", 422),
        ("_unmatched", 404),
    ]
    route = "/ninja/shop/items/<item_id>"
    assert count(registry, http_route=route, http_response_status_code="200") == 1
    assert count(registry) == 4
