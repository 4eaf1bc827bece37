from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.util import FileWrapper, setup_testing_defaults

import pytest
import structlog
from flask import Flask, request
from prometheus_client import CollectorRegistry
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from obs.config import Settings
from obs.integrations.flask import instrument
from obs.logs.context import current_request_id
from obs.wsgi import ROUTE_KEY, ObservabilityMiddleware, make_metrics_app
from tests.conftest import access, active, count

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def middleware(app: Any, registry: CollectorRegistry, **kw: Any) -> ObservabilityMiddleware:
    return ObservabilityMiddleware(app, registry=registry, settings=Settings.from_env({}), **kw)


class Call:
    """What a WSGI server saw of one request."""

    def __init__(self, app: Any, path: str = "/", **environ: Any) -> None:
        self.environ: dict[str, Any] = {"PATH_INFO": path, **environ}
        setup_testing_defaults(self.environ)
        self.status = ""
        self.headers: dict[str, str] = {}
        self.result = app(self.environ, self.start_response)

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        self.status, self.headers = status, dict(headers)
        return lambda data: None

    def body(self) -> bytes:
        try:
            return b"".join(self.result)
        finally:
            close = getattr(self.result, "close", None)
            if close is not None:
                close()


def hello(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    environ[ROUTE_KEY] = "/hello/{name}"
    structlog.get_logger("handler").info("inside")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hi"]


def test_ids_metrics_and_one_access_line(registry: CollectorRegistry, log: io.StringIO) -> None:
    call = Call(middleware(hello, registry), "/hello/ann", QUERY_STRING="token=s3cret&a=1")
    assert call.body() == b"hi"
    request_id = call.headers["X-Request-ID"]
    assert count(registry, http_route="/hello/{name}", http_response_status_code="200") == 1
    (line,) = access(log)
    assert line["request_id"] == request_id and line["path"] == "/hello/ann"
    assert line["query"] == "token=[REDACTED]&a=1" and line["bytes_out"] == 2
    inside = next(json.loads(x) for x in log.getvalue().splitlines() if '"inside"' in x)
    assert inside["request_id"] == request_id
    assert current_request_id() is None  # unbound when the app returned


def test_incoming_ids_kept_unsafe_ones_replaced(registry: CollectorRegistry) -> None:
    app = middleware(hello, registry)
    assert Call(app, HTTP_X_REQUEST_ID="up-1.2").headers["X-Request-ID"] == "up-1.2"
    assert len(Call(app, HTTP_X_REQUEST_ID="bad id\x01").headers["X-Request-ID"]) == 32


def test_headers_of_the_app_are_not_mutated(registry: CollectorRegistry) -> None:
    shared = [("Content-Type", "text/plain")]

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", shared)
        return [b""]

    for _ in range(3):
        Call(middleware(app, registry)).body()
    assert shared == [("Content-Type", "text/plain")]


def test_streaming_is_timed_until_close_and_inner_close_always_runs(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    closed: list[str] = []
    seen_ids: list[str | None] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            for i in range(3):
                seen_ids.append(current_request_id())
                yield b"x" * (i + 1)

        def close(self) -> None:
            closed.append("closed")

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        return Body()

    call = Call(middleware(app, registry))
    assert active(registry) == 1  # in flight until the server closes the body
    assert call.body() == b"xxxxxx"
    assert closed == ["closed"] and active(registry) == 0
    assert seen_ids == [call.headers["X-Request-ID"]] * 3  # bound while the app streams
    assert access(log)[0]["bytes_out"] == 6

    # A client that goes away: the server stops iterating and closes.
    early = Call(middleware(app, registry))
    next(iter(early.result))
    early.result.close()  # type: ignore[attr-defined]
    assert closed == ["closed", "closed"] and active(registry) == 0


def test_exception_before_start_response_is_a_500_and_reraised(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        Call(middleware(app, registry))
    assert (
        count(
            registry,
            http_response_status_code="500",
            error_type="RuntimeError",
            http_route="_unmatched",
        )
        == 1
    )
    (line,) = access(log)
    assert line["level"] == "error" and line["exception"][0]["exc_type"] == "RuntimeError"
    assert current_request_id() is None and active(registry) == 0


def test_exception_after_start_response_but_before_the_body_is_a_500(
    registry: CollectorRegistry,
) -> None:
    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        raise ValueError("late")

    with pytest.raises(ValueError):
        Call(middleware(app, registry))
    assert count(registry, http_response_status_code="500", error_type="ValueError") == 1


def test_exception_while_streaming_keeps_the_status_and_closes(registry: CollectorRegistry) -> None:
    closed = []

    def chunks() -> Iterator[bytes]:
        try:
            yield b"first"
            raise OSError("disk")
        finally:
            closed.append(True)

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        return chunks()

    call = Call(middleware(app, registry))
    with pytest.raises(OSError):
        call.body()
    assert closed and count(registry, http_response_status_code="200", error_type="OSError") == 1


def test_exc_info_recall_of_start_response_changes_the_status(registry: CollectorRegistry) -> None:
    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        try:
            raise KeyError("x")
        except KeyError:
            import sys

            start_response("503 Service Unavailable", [], sys.exc_info())
        return [b"sorry"]

    def first(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        return app(environ, start_response)

    call = Call(middleware(first, registry))
    assert call.status.startswith("503") and call.headers.get("X-Request-ID")
    call.body()
    assert count(registry, http_response_status_code="503") == 1


def test_plain_apps_get_a_bounded_route(registry: CollectorRegistry) -> None:
    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        return [b""]

    wrapped = middleware(app, registry)
    for i in range(50):
        Call(wrapped, f"/raw/{i}").body()
    assert count(registry, http_route="_unmatched") == 50


def test_flask_route_templates_exceptions_and_metrics(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    app = Flask(__name__)

    @app.get("/items/<item_id>")
    def item(item_id: str) -> str:
        return item_id

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    instrument(app, registry=registry, settings=Settings.from_env({}), metrics_path=None)
    client = app.test_client()
    with client.get("/items/7") as response:  # the observation ends when the body is closed
        assert response.headers["X-Request-ID"]
    with client.get("/boom") as response:
        assert response.status_code == 500
    client.get("/missing").close()
    assert count(registry, http_route="/items/<item_id>", http_response_status_code="200") == 1
    assert (
        count(
            registry, http_route="/boom", http_response_status_code="500", error_type="RuntimeError"
        )
        == 1
    )
    assert (
        count(registry, http_route="_unmatched", http_response_status_code="404", error_type="")
        == 1
    )


def test_flask_routes_survive_early_answers_and_blueprints(registry: CollectorRegistry) -> None:
    from flask import Blueprint

    app = Flask(__name__)
    shop = Blueprint("shop", __name__, url_prefix="/shop")
    shop.add_url_rule("/carts/<int:cart_id>", "cart", lambda cart_id: str(cart_id))
    app.register_blueprint(shop)
    app.add_url_rule("/private/<doc>", "private", lambda doc: doc)

    @app.before_request
    def refuse_private() -> Any:
        if request.path.startswith("/private/"):
            return "go away", 403
        return None

    instrument(app, registry=registry, settings=Settings.from_env({}), metrics_path=None)
    client = app.test_client()
    client.get("/shop/carts/3").close()
    with client.get("/private/x") as response:
        assert response.status_code == 403
    assert (
        count(registry, http_route="/shop/carts/<int:cart_id>", http_response_status_code="200")
        == 1
    )
    assert count(registry, http_route="/private/<doc>", http_response_status_code="403") == 1


def test_flask_keeps_the_apps_own_request_class(registry: CollectorRegistry) -> None:
    from flask import Request

    class ShopRequest(Request):
        @property
        def shop(self) -> str:
            return "main street"

    app = Flask(__name__)
    app.request_class = ShopRequest
    seen: list[tuple[bool, Any]] = []

    @app.get("/shops/<int:shop_id>")
    def shop(shop_id: int) -> str:
        seen.append((isinstance(request._get_current_object(), ShopRequest), request.url_rule))  # type: ignore[attr-defined]
        return request.shop  # type: ignore[attr-defined, no-any-return]

    instrument(app, registry=registry, settings=Settings.from_env({}), metrics_path=None)
    with app.test_client().get("/shops/1") as response:
        assert response.text == "main street"
    assert seen == [(True, app.url_map._rules_by_endpoint["shop"][0])]
    assert count(registry, http_route="/shops/<int:shop_id>", http_response_status_code="200") == 1


def test_mounted_flask_app_routes_are_relative_to_the_middleware(
    registry: CollectorRegistry,
) -> None:
    app = Flask(__name__)
    app.add_url_rule("/users/<name>", "user", lambda name: name)
    instrument(app, registry=registry, settings=Settings.from_env({}), metrics_path=None)
    root = Flask("root")
    root.wsgi_app = DispatcherMiddleware(root.wsgi_app, {"/api": app})  # type: ignore[method-assign]
    Call(root, "/api/users/ann").body()
    assert count(registry, http_route="/users/<name>") == 1


def test_file_wrapper_keeps_the_server_path(registry: CollectorRegistry, log: io.StringIO) -> None:
    with tempfile.NamedTemporaryFile(delete=False) as handle:
        handle.write(b"z" * 1000)
    try:

        def app(environ: Any, start_response: Any) -> Iterable[bytes]:
            start_response("200 OK", [])
            return environ["wsgi.file_wrapper"](open(handle.name, "rb"), 256)  # type: ignore[no-any-return]

        call = Call(middleware(app, registry), **{"wsgi.file_wrapper": FileWrapper})
        assert isinstance(call.result, FileWrapper)
        assert call.body() == b"z" * 1000
        assert access(log)[0]["bytes_out"] == 1000 and active(registry) == 0
    finally:
        os.unlink(handle.name)


def test_metrics_app_negotiates_and_checks_credentials(registry: CollectorRegistry) -> None:
    Call(middleware(hello, registry)).body()
    metrics = make_metrics_app(registry)
    om = Call(metrics, "/metrics", HTTP_ACCEPT=OPENMETRICS)
    assert om.headers["Content-Type"].startswith("application/openmetrics-text")
    assert b"# {request_id=" in om.body()
    assert Call(metrics, "/metrics", REQUEST_METHOD="HEAD").body() == b""
    guarded = make_metrics_app(registry, username="u", password="p")
    assert Call(guarded, "/metrics").status.startswith("401")
    ok = Call(guarded, "/metrics", HTTP_AUTHORIZATION="Basic dTpw")
    assert ok.status.startswith("200")
