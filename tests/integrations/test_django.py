from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from typing import Any

import django
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import path
from prometheus_client import CollectorRegistry

from obs.config import Settings
from obs.wsgi import ObservabilityMiddleware as WsgiMiddleware
from tests.conftest import access, count

if not settings.configured:
    settings.configure(
        SECRET_KEY="test", ALLOWED_HOSTS=["testserver"], INSTALLED_APPS=[], DATABASES={},
        MIDDLEWARE=[], ROOT_URLCONF=__name__, LOGGING_CONFIG=None,
    )  # fmt: skip
    django.setup()


def question(request: HttpRequest, question_id: int) -> HttpResponse:
    return HttpResponse(f"q{question_id}")


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom")


def missing(request: HttpRequest) -> HttpResponse:
    raise Http404("no such thing")


def stream(request: HttpRequest) -> StreamingHttpResponse:
    def chunks() -> Iterator[bytes]:
        yield b"ab"
        yield b"cde"

    return StreamingHttpResponse(chunks())


urlpatterns = [
    path("polls/<int:question_id>/", question),
    path("boom", boom),
    path("missing", missing),
    path("stream", stream),
]


def observed(registry: CollectorRegistry) -> Any:
    return override_settings(
        MIDDLEWARE=["obs.django.ObservabilityMiddleware"],
        OBS_MIDDLEWARE={"registry": registry, "settings": Settings.from_env({})},
    )


def test_wsgi_handler_routes_exceptions_and_streaming(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    with observed(registry):
        client = Client(raise_request_exception=False)
        response = client.get("/polls/7/")
        assert response.headers["X-Request-ID"]
        assert client.get("/boom").status_code == 500
        assert client.get("/missing").status_code == 404
        assert client.get("/nowhere/12345").status_code == 404
        assert b"".join(client.get("/stream").streaming_content) == b"abcde"  # type: ignore[attr-defined]
    assert (
        count(registry, http_route="/polls/<int:question_id>/", http_response_status_code="200")
        == 1
    )
    assert (
        count(
            registry, http_route="/boom", http_response_status_code="500", error_type="RuntimeError"
        )
        == 1
    )
    assert (
        count(registry, http_route="/missing", http_response_status_code="404", error_type="") == 1
    )
    assert count(registry, http_route="_unmatched", http_response_status_code="404") == 1
    lines = access(log)
    assert len(lines) == 5
    assert lines[0]["request_id"] == response.headers["X-Request-ID"]
    assert lines[-1]["bytes_out"] == 5


def test_asgi_handler(registry: CollectorRegistry, log: io.StringIO) -> None:
    async def run() -> None:
        client = AsyncClient(raise_request_exception=False)
        assert (await client.get("/polls/3/")).headers["X-Request-ID"]
        assert (await client.get("/boom")).status_code == 500

    with observed(registry):
        asyncio.run(run())
    assert (
        count(registry, http_route="/polls/<int:question_id>/", http_response_status_code="200")
        == 1
    )
    assert count(registry, http_route="/boom", error_type="RuntimeError") == 1


def test_inside_the_wsgi_middleware_a_request_counts_once(registry: CollectorRegistry) -> None:
    from wsgiref.util import setup_testing_defaults

    from django.core.handlers.wsgi import WSGIHandler

    with override_settings(MIDDLEWARE=["obs.django.ObservabilityMiddleware"]):
        app = WsgiMiddleware(WSGIHandler(), registry=registry, settings=Settings.from_env({}))
        environ: dict[str, Any] = {"PATH_INFO": "/polls/5/", "HTTP_HOST": "testserver"}
        setup_testing_defaults(environ)
        result = app(environ, lambda status, headers, exc_info=None: lambda data: None)
        b"".join(result)
        result.close()  # type: ignore[attr-defined]
    assert count(registry, http_route="/polls/<int:question_id>/") == 1
    assert count(registry) == 1
