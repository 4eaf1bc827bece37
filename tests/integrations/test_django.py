from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Iterator
from typing import Any

import django
import httpx
import pytest
import structlog
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import include, path, re_path
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


def archive(request: HttpRequest, year: str, slug: str | None = None) -> HttpResponse:
    return HttpResponse(year)


def own_id(request: HttpRequest) -> HttpResponse:
    response = HttpResponse("x")
    response["X-Request-ID"] = "chosen-by-the-view"
    return response


def bind(request: HttpRequest) -> HttpResponse:
    structlog.contextvars.bind_contextvars(user_id=request.GET["user"])
    structlog.get_logger("view").info("bound")
    return HttpResponse("bound")


async def bind_async(request: HttpRequest) -> HttpResponse:
    structlog.contextvars.bind_contextvars(user_id=request.GET["user"])
    structlog.get_logger("view").info("bound")
    return HttpResponse("bound")


def plain_view(request: HttpRequest) -> HttpResponse:
    structlog.get_logger("view").info("plain")
    return HttpResponse("plain")


def secret_view(request: HttpRequest, **kwargs: str) -> HttpResponse:
    return HttpResponse("ok")


key_patterns = [re_path(r"^(?P<api_key>[0-9A-Za-z]+)/$", secret_view)]
archive_patterns = [
    re_path(r"^(?P<year>[0-9]{4})/$", archive),
    re_path(r"^(?P<year>[0-9]{4})/(?P<slug>[\w-]+)\.html$", archive),
]

urlpatterns = [
    path("polls/<int:question_id>/", question),
    path("boom", boom),
    path("missing", missing),
    path("stream", stream),
    path("own-id", own_id),
    path("bind", bind),
    path("bind-async", bind_async),
    path("plain", plain_view),
    re_path(r"^v2/archive/(?P<year>[0-9]{4})/$", archive),
    path("blog/", include(archive_patterns)),
    re_path(r"^old/", include(archive_patterns)),
    # Secret path parameters: as django.contrib.auth.urls names them (the app needs a
    # database), a converter, and a regex route under include().
    path("reset/<uidb64>/<token>/", secret_view),
    path("sessions/<str:session_id>/", secret_view),
    path("keys/", include(key_patterns)),
]

# No request context may outlive its request: the autouse fixture checks instead of clearing.
pytestmark = pytest.mark.no_context_reset


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


def test_re_path_routes_are_readable_templates(registry: CollectorRegistry) -> None:
    with observed(registry):
        client = Client()
        for url in (
            "/v2/archive/2024/",
            "/blog/2023/",
            "/blog/2023/hello-world.html",
            "/old/1999/",
        ):
            assert client.get(url).status_code == 200
    routes = {"/v2/archive/{year}/", "/blog/{year}/", "/blog/{year}/{slug}.html", "/old/{year}/"}
    assert {r for r in routes if count(registry, http_route=r) == 1} == routes


def test_regex_template_rule() -> None:
    from obs.django import regex_template

    assert regex_template(r"^archive/(?P<year>[0-9]{4})/$") == "archive/{year}/"
    assert regex_template(r"^files/(.+)\.txt\Z") == "files/{0}.txt"
    assert regex_template(r"^c/(?:page-(?P<n>\d+)/)?$") == "c/(?:page-{n}/)?"
    assert regex_template(r"^a/[^/)]+/(\d+)/(\w+)$") == "a/[^/)]+/{0}/{1}"


def test_django_request_lines_carry_the_request_id(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    with observed(registry):
        client = Client(raise_request_exception=False)
        not_found = client.get("/nowhere/1")
        failed = client.get("/boom")
    records = [json.loads(line) for line in log.getvalue().splitlines()]
    django_lines = [r for r in records if r.get("logger") == "django.request"]
    assert [(r["event"], r["request_id"]) for r in django_lines] == [
        ("Not Found: /nowhere/1", not_found.headers["X-Request-ID"]),
        ("Internal Server Error: /boom", failed.headers["X-Request-ID"]),
    ]


@pytest.mark.parametrize("middleware", [{"access_log": False}, {"exclude_paths": ["/boom"]}])
def test_without_its_access_line_djangos_own_line_keeps_the_traceback(
    registry: CollectorRegistry, log: io.StringIO, middleware: dict[str, Any]
) -> None:
    options = {"registry": registry, "settings": Settings.from_env({}), **middleware}
    with override_settings(
        MIDDLEWARE=["obs.django.ObservabilityMiddleware"], OBS_MIDDLEWARE=options
    ):
        failed = Client(raise_request_exception=False).get("/boom")
    assert failed.status_code == 500
    records = [json.loads(line) for line in log.getvalue().splitlines()]
    assert not [r for r in records if r.get("logger") == "obs.access"]
    (django_line,) = [r for r in records if r.get("logger") == "django.request"]
    assert django_line["exception"][0]["exc_type"] == "RuntimeError"  # written once, here


def test_a_views_own_request_id_is_replaced_never_doubled(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    with observed(registry):
        response = Client().get("/own-id", headers={"X-Request-ID": "from-the-client"})
    assert response.headers["X-Request-ID"] == "from-the-client"
    assert access(log)[0]["request_id"] == "from-the-client"


@pytest.mark.parametrize("view", ["/bind", "/bind-async"])
def test_context_bound_by_a_view_stays_with_its_request(
    registry: CollectorRegistry, log: io.StringIO, view: str
) -> None:
    async def run_async() -> None:
        client = AsyncClient()
        await client.get(view, {"user": "alice"})
        await client.get("/plain")

    with observed(registry):
        client = Client()
        client.get(view, {"user": "alice"})
        client.get("/plain")
        asyncio.run(run_async())
    records = [json.loads(line) for line in log.getvalue().splitlines()]
    assert [(r["event"], r.get("user_id")) for r in records] == [
        ("bound", "alice"), ("request", "alice"), ("plain", None), ("request", None),
    ] * 2  # fmt: skip
    assert structlog.contextvars.get_contextvars() == {}


def test_metrics_view_serves_the_middlewares_registry_with_basic_auth(
    registry: CollectorRegistry,
) -> None:
    from obs.django import metrics_view

    with (
        observed(registry),
        override_settings(
            OBS_METRICS={"username": "scraper", "password": "s3cret"},
            ROOT_URLCONF=__name__ + "_metrics",
        ),
    ):
        client = Client()
        client.get("/polls/1/")
        denied = client.get("/metrics")
        allowed = client.get("/metrics", headers={"Authorization": "Basic c2NyYXBlcjpzM2NyZXQ="})
    assert denied.status_code == 401 and denied.headers["WWW-Authenticate"].startswith("Basic")
    assert allowed.status_code == 200
    assert 'http_route="/polls/<int:question_id>/"' in allowed.content.decode()
    assert metrics_view.__name__ == "metrics_view"


def test_metrics_view_answers_only_get_and_head(registry: CollectorRegistry) -> None:
    with observed(registry), override_settings(ROOT_URLCONF=__name__ + "_metrics"):
        client = Client()
        refused = [client.generic(method, "/metrics") for method in ("POST", "PUT", "DELETE")]
        head = client.head("/metrics")
    for response in refused:
        assert response.status_code == 405 and response["Allow"] == "GET, HEAD"
        assert b"http_server" not in response.content
    assert head.status_code == 200 and head.content == b""


def _metrics_urlconf() -> None:
    """A URLconf with the metrics view, registered as a module for override_settings."""
    import sys
    import types

    from obs.django import metrics_view

    module = types.ModuleType(__name__ + "_metrics")
    module.urlpatterns = [path("metrics", metrics_view), *urlpatterns]  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module


_metrics_urlconf()


def test_secret_path_parameters_are_masked_in_the_access_line(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    secret = "S3CR3TVALUE"
    with observed(registry):
        client = Client()
        for url in (f"/reset/MQ/{secret}/", f"/sessions/{secret}/", f"/keys/{secret}/"):
            assert client.get(url).status_code == 200
        assert client.get("/polls/7/").status_code == 200
    assert [(line["http_route"], line["path"]) for line in access(log)] == [
        ("/reset/<uidb64>/<token>/", "/reset/MQ/[REDACTED]/"),
        ("/sessions/<str:session_id>/", "/sessions/[REDACTED]/"),
        ("/keys/{api_key}/", "/keys/[REDACTED]/"),
        ("/polls/<int:question_id>/", "/polls/7/"),
    ]
    assert secret not in log.getvalue()


@pytest.mark.parametrize(
    "server",
    [
        ["gunicorn", "-w", "1", "-k", "gthread", "-b", "127.0.0.1:{port}", "djangoproject.wsgi"],
        ["uvicorn", "djangoproject.asgi:application", "--port", "{port}", "--no-access-log"],
    ],
    ids=["gunicorn", "uvicorn"],
)
def test_a_streaming_body_raising_midway_is_recorded_and_async_chunks_log_in_the_request(
    server: list[str],
) -> None:
    """Before, an exception partway through a StreamingHttpResponse left no trace in obs (a 200
    without error_type), and an async body's lines had no request id: Django's ASGI handler
    iterates it outside the request's context."""
    from tests.conftest import free_port
    from tests.integration.servers import serve

    port = free_port()
    argv = [part.format(port=port) for part in server]
    with serve(argv, port) as running:
        with httpx.Client(base_url=running.base_url, timeout=10) as client:
            with pytest.raises(httpx.HTTPError):  # the server cuts the body short
                client.get("/stream-fails", headers={"X-Request-ID": "fails"}).read()
            streamed = client.get("/astream", headers={"X-Request-ID": "streams"})
            assert streamed.content == b"chunk 0\nchunk 1\n"
            metrics = client.get("/metrics").text
        running.stop()
    records = [json.loads(line) for line in running.lines() if line.startswith("{")]
    by_id = {r["request_id"]: r for r in records if r.get("event") == "request"}
    failed = by_id["fails"]
    assert failed["error_type"] == "RuntimeError"
    # (under uvicorn chained to the TypeError of Django's async iteration of a sync body)
    assert "midway" in [exc["exc_value"] for exc in failed["exception"]]
    assert (
        'http_server_exceptions_total{error_type="RuntimeError",http_route="/stream-fails"} 1.0'
        in metrics
    )
    chunk_lines = [r for r in records if r.get("event") == "async chunk"]
    assert [(r["request_id"], r.get("http_route")) for r in chunk_lines] == 2 * [
        ("streams", "/astream")
    ]


@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_a_client_that_hangs_up_mid_stream_is_a_499_under_djangos_own_wsgi(worker: str) -> None:
    """obs.django alone (no obs.wsgi around Django): a streaming body the server stops
    iterating because the client went away is what the client got, a 499."""
    import socket
    import struct

    from tests.conftest import free_port
    from tests.integration.servers import serve

    port = free_port()
    argv = ["gunicorn", "-w", "1", "-k", worker, "-b", f"127.0.0.1:{port}", "djangoproject.wsgi"]
    with serve(argv, port) as running:
        with httpx.Client(base_url=running.base_url, timeout=20) as client:
            whole = client.get("/longstream", headers={"X-Request-ID": "whole"})
        assert len(whole.content) == 200 * 65536
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"GET /longstream HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-ID: gone\r\n\r\n"
            )
            got = 0
            while got < 2 * 65536:
                chunk = sock.recv(65536)
                assert chunk, "the server closed before the body"
                got += len(chunk)
            # SO_LINGER 0: close() resets the connection, the server's next send fails at once.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        deadline = time.monotonic() + 15
        while (
            'http_response_status_code="499"' not in httpx.get(running.base_url + "/metrics").text
        ):
            assert time.monotonic() < deadline, "no 499 recorded"
            time.sleep(0.1)
        running.stop()
    records = [json.loads(line) for line in running.lines() if line.startswith("{")]
    by_id = {r["request_id"]: r for r in records if r.get("event") == "request"}
    assert (by_id["whole"]["status"], by_id["whole"]["bytes_out"]) == (200, 200 * 65536)
    gone = by_id["gone"]
    assert gone["status"] == 499, gone
    assert 2 * 65536 <= gone["bytes_out"] < 200 * 65536, gone


def _i18n_urlconf(name: str, prefix_default_language: bool) -> str:
    import sys
    import types

    from django.conf.urls.i18n import i18n_patterns

    module = types.ModuleType(name)
    module.urlpatterns = [  # type: ignore[attr-defined]
        path("plain", plain_view),
        *i18n_patterns(
            path("polls/<int:question_id>/", question),
            path("reset/<uidb64>/<token>/", secret_view),
            re_path(r"^archive/(?P<year>[0-9]{4})/$", archive),
            prefix_default_language=prefix_default_language,
        ),
    ]
    sys.modules[name] = module
    return name


@pytest.mark.parametrize("handler", ["wsgi", "asgi"])
def test_the_language_prefix_of_i18n_patterns_is_one_template(
    registry: CollectorRegistry, log: io.StringIO, handler: str
) -> None:
    """Before, each language was a route of its own (``/fr/polls/<int:question_id>/``)."""
    urls = ["/fr/polls/1/", "/de/polls/2/", "/en/archive/2024/", "/fr/reset/MQ/SECRET/", "/plain"]
    with (
        observed(registry),
        override_settings(
            ROOT_URLCONF=_i18n_urlconf("obs_test_i18n", True),
            MIDDLEWARE=[
                "obs.django.ObservabilityMiddleware",
                "django.middleware.locale.LocaleMiddleware",
            ],
        ),
    ):
        if handler == "wsgi":
            statuses = [Client().get(url).status_code for url in urls]
        else:

            async def run() -> list[int]:
                client = AsyncClient()
                return [(await client.get(url)).status_code for url in urls]

            statuses = asyncio.run(run())
    assert statuses == [200] * 5
    lines = [(r["http_route"], r["path"]) for r in access(log)]
    assert lines == [
        ("/{language}/polls/<int:question_id>/", "/fr/polls/1/"),
        ("/{language}/polls/<int:question_id>/", "/de/polls/2/"),
        ("/{language}/archive/{year}/", "/en/archive/2024/"),
        ("/{language}/reset/<uidb64>/<token>/", "/fr/reset/MQ/[REDACTED]/"),
        ("/plain", "/plain"),
    ]
    assert count(registry, http_route="/{language}/polls/<int:question_id>/") == 2


def test_a_url_without_the_language_prefix_keeps_none(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    with (
        observed(registry),
        override_settings(
            ROOT_URLCONF=_i18n_urlconf("obs_test_i18n_unprefixed", False),
            MIDDLEWARE=[
                "obs.django.ObservabilityMiddleware",
                "django.middleware.locale.LocaleMiddleware",
            ],
        ),
    ):
        client = Client()
        assert client.get("/polls/1/").status_code == 200  # LANGUAGE_CODE: no prefix
        assert client.get("/fr/polls/2/").status_code == 200
    assert [r["http_route"] for r in access(log)] == [
        "/polls/<int:question_id>/",
        "/{language}/polls/<int:question_id>/",
    ]


def test_the_django_private_names_obs_reads_still_exist() -> None:
    from obs.integrations import _compat
    from tests.conftest import assert_private_names_exist

    assert_private_names_exist(_compat.DJANGO_PRIVATE_NAMES, "django", django.__version__)
