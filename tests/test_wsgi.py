from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
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

# No request context may outlive its request: the autouse fixture checks instead of clearing.
pytestmark = pytest.mark.no_context_reset


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
    kept, replaced = Call(app, HTTP_X_REQUEST_ID="up-1.2"), Call(app, HTTP_X_REQUEST_ID="x y\x01")
    kept.body(), replaced.body()  # the headers reach the server with the first chunk
    assert kept.headers["X-Request-ID"] == "up-1.2"
    assert len(replaced.headers["X-Request-ID"]) == 32


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

    call = None
    with pytest.raises(RuntimeError) as raised:
        call = Call(middleware(app, registry))
    assert call is None  # re-raised: the server logs it as without obs
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
    # The exception carries the id, for the server's own traceback line.
    from obs.http.observation import request_id_of

    assert request_id_of(raised.value) == line["request_id"]
    assert f"request_id: {line['request_id']}" in raised.value.__notes__


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
    call.body()
    assert call.status.startswith("503") and call.headers.get("X-Request-ID")  # the one call
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


def test_a_flask_views_traceback_is_written_once_in_the_access_line(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    """Before, Flask's own ``Exception on /boom [GET]`` line (app.logger) carried it too."""
    app = Flask(__name__)

    @app.route("/boom")
    @app.route("/health")  # excluded from the access log: Flask's line keeps the traceback
    def boom() -> str:
        raise ValueError("boom")

    instrument(app, registry=registry, settings=Settings.from_env({}))
    app.test_client().get("/boom")
    app.test_client().get("/health")
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    with_traceback = [(r["event"], r.get("request_id")) for r in lines if "exception" in r]
    (access_line,) = access(log)
    assert with_traceback == [
        ("request", access_line["request_id"]),
        ("Exception on /health [GET]", with_traceback[-1][1]),
    ]
    flask_line = next(r for r in lines if r["event"] == "Exception on /boom [GET]")
    assert flask_line["request_id"] == access_line["request_id"]


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


def test_an_observed_flask_app_inside_an_observed_site_joins_its_request(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    """Before, the request was counted and logged twice, with two ids, and the inner route
    lost its mount prefix."""
    api = Flask("api")
    api.add_url_rule("/items/<int:item_id>", "item", lambda item_id: str(item_id))
    api.add_url_rule("/boom", "boom", lambda: 1 / 0)
    instrument(api, registry=CollectorRegistry(), metrics_path=None)  # the site's options win

    def frontend(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"front"]

    site = middleware(DispatcherMiddleware(frontend, {"/api": api}), registry)
    call = Call(site, "/api/items/1", HTTP_X_REQUEST_ID="site-1")
    assert call.body() == b"1" and call.headers["X-Request-ID"] == "site-1"
    boom = Call(site, "/api/boom")
    boom.body()
    assert boom.status.startswith("500") and "X-Request-ID" in boom.headers
    Call(site, "/api/nowhere").body()
    Call(site, "/front").body()
    lines = [(r["path"], r["http_route"], r["status"], r.get("error_type")) for r in access(log)]
    assert lines == [
        ("/api/items/1", "/api/items/<int:item_id>", 200, None),
        ("/api/boom", "/api/boom", 500, "ZeroDivisionError"),
        ("/api/nowhere", "_unmatched", 404, None),
        ("/front", "_unmatched", 200, None),
    ]
    assert access(log)[0]["request_id"] == "site-1"
    assert count(registry, http_route="/api/items/<int:item_id>") == 1
    assert count(registry) == 4 and active(registry) == 0


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


def test_a_sized_body_keeps_its_length_and_is_counted_once_when_read_twice(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    """PEP 3333 lets a server size a body from ``len()``: waitress when it is 1, gevent's
    pywsgi by summing the chunks in a second pass while it sends the first one."""

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        return [b"ab", b"cde"]

    call = Call(middleware(app, registry))
    assert len(call.result) == 2  # type: ignore[arg-type]
    sent, summed = [], 0
    for chunk in call.result:  # as gevent's pywsgi does: the sum comes with the first write
        if not sent:
            summed = sum(len(c) for c in call.result)
        sent.append(chunk)
    call.result.close()  # type: ignore[attr-defined]
    assert sent == [b"ab", b"cde"] and summed == 5
    (line,) = access(log)
    assert line["bytes_out"] == 5 and count(registry, http_response_status_code="200") == 1

    def generated(environ: Any, start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [])
        yield b"x"

    streamed = Call(middleware(generated, registry)).result
    assert not hasattr(streamed, "__len__")
    streamed.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("method", "declared", "taken", "status", "bytes_out"),
    [
        ("GET", None, 2, 499, 2),  # the server stopped mid-stream: the client went away
        ("GET", "2", 2, 200, 2),  # it stopped once the declared length was out
        ("GET", None, 0, 499, 0),  # it asked for the body, then took nothing
        ("HEAD", None, 1, 200, 0),  # a HEAD response was complete with its head
    ],
)
def test_a_server_stopping_before_the_body_is_complete_is_a_client_gone(
    registry: CollectorRegistry,
    log: io.StringIO,
    method: str,
    declared: str | None,
    taken: int,
    status: int,
    bytes_out: int,
) -> None:
    closed = []

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        def chunks() -> Iterator[bytes]:
            try:
                yield from (b"a", b"b", b"c", b"d")
            finally:
                closed.append(True)

        start_response("200 OK", [] if declared is None else [("Content-Length", declared)])
        return chunks()

    call = Call(middleware(app, registry), REQUEST_METHOD=method)
    chunks = iter(call.result)
    for _ in range(taken):
        next(chunks)
    call.result.close()  # type: ignore[attr-defined]
    (line,) = access(log)
    assert (line["status"], line["bytes_out"]) == (status, bytes_out)
    assert closed or not taken  # a generator never started has no finally to run
    assert (
        count(registry, http_response_status_code=str(status)) == 1
        and active(registry, method) == 0
    )


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


# -- issue 16: test clients, isolated request context, one header ------------------------------


class Server:
    """A WSGI server as gunicorn's sync worker drives an app: start_response, write(), iterate,
    close; what went out is kept (status, headers, body)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def get(self, path: str = "/", **environ: Any) -> tuple[str, list[tuple[str, str]], bytes]:
        call: dict[str, Any] = {"status": "", "headers": [], "body": b""}
        env: dict[str, Any] = {"PATH_INFO": path, **environ}
        setup_testing_defaults(env)

        def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            if exc_info is not None and call["body"]:
                raise exc_info[1].with_traceback(exc_info[2])
            call["status"], call["headers"] = status, list(headers)
            return lambda data: call.__setitem__("body", call["body"] + data)

        try:
            result = self.app(env, start_response)
        except Exception:
            return call["status"], call["headers"], call["body"]
        try:
            for chunk in result:
                call["body"] += chunk
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return call["status"], call["headers"], call["body"]


def plain(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """A plain WSGI app of the shapes users write: list, generator, early and late errors."""
    path = environ["PATH_INFO"]
    if path == "/early":
        raise RuntimeError("before start_response")
    if path == "/late":
        start_response("200 OK", [("Content-Type", "text/plain")])
        raise ValueError("after start_response")
    if path == "/own-id":
        start_response("200 OK", [("x-request-id", "the-apps-own"), ("Content-Length", "2")])
        return [b"ok"]
    if path == "/bind":
        structlog.contextvars.bind_contextvars(user_id=environ.get("QUERY_STRING"))
    if path == "/gen":

        def chunks() -> Iterator[bytes]:
            structlog.get_logger("app").info("streaming")
            yield b"a"
            yield b"bc"

        start_response("200 OK", [("Content-Type", "text/plain")])
        return chunks()
    structlog.get_logger("app").info("handled")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def test_werkzeug_client_counts_every_request_without_close(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    from werkzeug.test import Client

    client = Client(middleware(plain, registry))
    assert client.get("/").status_code == 200  # nothing read, nothing closed
    assert count(registry) == 1 and active(registry) == 0
    assert client.get("/gen").data == b"abc"  # a generator: recorded once exhausted
    assert count(registry) == 2 and active(registry) == 0
    lines = access(log)
    assert [(r["path"], r["bytes_out"]) for r in lines] == [("/", 5), ("/gen", 3)]


def test_a_request_is_recorded_when_its_last_byte_went_out_not_at_close(
    registry: CollectorRegistry,
) -> None:
    events: list[str] = []

    def app(environ: Any, start_response: Any) -> Iterable[bytes]:
        def chunks() -> Iterator[bytes]:
            yield b"1"
            yield b"2"

        start_response("200 OK", [])
        return chunks()

    result = middleware(app, registry)(
        {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}, lambda *a: events.append
    )
    assert list(result) == [b"1", b"2"]
    assert count(registry) == 1  # before close()
    result.close()  # type: ignore[attr-defined]
    assert count(registry) == 1  # close() records nothing twice


def test_flask_test_client_counts_and_logs_every_body_kind_without_close(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    from flask import Response, stream_with_context

    app = Flask(__name__)

    @app.get("/text")
    def text() -> str:
        return "hello"

    @app.get("/generated")
    def generated() -> Response:
        def chunks() -> Iterator[str]:
            yield "a"
            yield "b"

        return Response(chunks())

    @app.get("/streamed")
    def streamed() -> Response:
        def chunks() -> Iterator[str]:
            yield request.args["who"]  # needs the request context: stream_with_context
            yield "!"

        return Response(stream_with_context(chunks()))

    instrument(app, registry=registry, settings=Settings.from_env({}), metrics_path=None)
    client = app.test_client()
    assert client.get("/text").status_code == 200  # body never read
    assert client.get("/generated").data == b"ab"
    assert client.get("/streamed?who=ann").data == b"ann!"
    assert count(registry, http_route="/text") == 1
    assert count(registry, http_route="/generated") == 1
    assert count(registry, http_route="/streamed") == 1
    assert [(r["http_route"], r["bytes_out"]) for r in access(log)] == [
        ("/text", 5),
        ("/generated", 2),
        ("/streamed", 4),
    ]
    assert active(registry) == 0


def test_each_request_has_its_own_context_and_the_servers_is_restored(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    server = Server(middleware(plain, registry))
    structlog.contextvars.bind_contextvars(server_key="outer")  # the server's own context
    try:
        server.get("/bind", QUERY_STRING="alice")
        server.get("/")  # the next request on this thread
        server.get("/gen")
        assert structlog.contextvars.get_contextvars() == {"server_key": "outer"}
    finally:
        structlog.contextvars.unbind_contextvars("server_key")
    records = [json.loads(line) for line in log.getvalue().splitlines()]
    (bind_id,) = [r["request_id"] for r in records if r.get("path") == "/bind"]
    alice = [r for r in records if r["request_id"] == bind_id]
    assert len(alice) == 2 and all(r["user_id"] == "alice" for r in alice)  # access line too
    others = [r for r in records if r["request_id"] != bind_id]
    assert len(others) == 4  # handled, /, streaming, /gen
    assert not [r for r in others if "user_id" in r or "server_key" in r]
    assert all(r["request_id"] for r in records)


def test_flask_view_binding_context_does_not_reach_the_next_request(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    app = Flask(__name__)

    @app.get("/users/<name>")
    def user(name: str) -> str:
        structlog.contextvars.bind_contextvars(user_id=name)
        structlog.get_logger("app").info("user seen")
        return name

    @app.get("/anonymous")
    def anonymous() -> str:
        structlog.get_logger("app").info("anonymous seen")
        return "?"

    instrument(app, registry=registry, settings=Settings.from_env({}), metrics_path=None)
    client = app.test_client()
    client.get("/users/alice")
    client.get("/anonymous")
    records = [json.loads(line) for line in log.getvalue().splitlines()]
    assert [r.get("user_id") for r in records] == ["alice", "alice", None, None]
    assert structlog.contextvars.get_contextvars() == {}


class GunicornRequest:
    """What gunicorn's response object reads of its request: a keep-alive HTTP/1.1 GET."""

    version = (1, 1)
    method = "GET"

    def should_close(self) -> bool:
        return False


def test_under_gunicorn_an_early_exception_gets_our_500_saying_connection_close(
    registry: CollectorRegistry,
) -> None:
    """gunicorn's own response object: the worker closes the connection of a request that
    raised, so obs's 500 (with the request id) must say so to a keep-alive client."""
    import socket

    from gunicorn.config import Config
    from gunicorn.http.wsgi import Response

    for path, error in (("/early", "RuntimeError"), ("/late", "ValueError")):
        ours, theirs = socket.socketpair()
        with ours, theirs:
            response = Response(GunicornRequest(), ours, Config())
            env: dict[str, Any] = {"PATH_INFO": path}
            setup_testing_defaults(env)
            with pytest.raises(Exception, match="start_response"):
                middleware(plain, registry)(env, response.start_response)
            theirs.settimeout(5)
            head, _, body = theirs.recv(65536).partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        assert lines[0] == "HTTP/1.1 500 Internal Server Error" and body == b"Internal Server Error"
        assert "Connection: close" in lines
        assert len([line for line in lines if line.startswith("X-Request-ID: ")]) == 1
        assert count(registry, http_response_status_code="500", error_type=error) == 1


def test_elsewhere_an_early_exception_is_left_to_the_server_to_answer(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    """A server obs cannot ask to say ``Connection: close`` answers with its own 500, as
    without obs: nothing went out from obs, and the request is recorded as that 500."""
    server = Server(middleware(plain, registry))
    for path, error in (("/early", "RuntimeError"), ("/late", "ValueError")):
        assert server.get(path) == ("", [], b"")  # the exception reached the server
        assert count(registry, http_response_status_code="500", error_type=error) == 1
    assert [line["status"] for line in access(log)] == [500, 500]


def test_under_werkzeugs_debugger_the_exception_is_left_to_it(registry: CollectorRegistry) -> None:
    from werkzeug.debug import DebuggedApplication
    from werkzeug.test import Client

    response = Client(DebuggedApplication(middleware(plain, registry))).get("/early")
    assert response.status_code == 500 and b"Traceback" in response.data  # the debugger's page
    assert count(registry, error_type="RuntimeError") == 1


def test_an_apps_own_request_id_header_is_replaced_never_doubled(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    _, headers, _ = Server(middleware(plain, registry)).get("/own-id")
    ids = [v for k, v in headers if k.lower() == "x-request-id"]
    assert ids == [access(log)[0]["request_id"]]

    app = Flask(__name__)

    @app.get("/own")
    def own() -> Any:
        return "x", 200, {"X-Request-ID": "chosen-by-the-view"}

    instrument(app, registry=registry, settings=Settings.from_env({}), metrics_path=None)
    response = app.test_client().get("/own", headers={"X-Request-ID": "from-the-client"})
    assert response.headers.getlist("X-Request-ID") == ["from-the-client"]


def test_instrument_twice_changes_nothing(registry: CollectorRegistry) -> None:
    app = Flask(__name__)
    app.add_url_rule("/x", "x", lambda: "x")
    options: dict[str, Any] = {"registry": registry, "settings": Settings.from_env({})}
    assert instrument(app, **options) is app
    wrapped = app.wsgi_app
    assert instrument(app, **options) is app
    assert app.wsgi_app is wrapped
    app.test_client().get("/x")
    assert count(registry, http_route="/x") == 1


def test_the_extension_form_serves_an_app_factory(registry: CollectorRegistry) -> None:
    from obs.integrations.flask import Observability

    observability = Observability(registry=registry, settings=Settings.from_env({}))

    def create_app() -> Flask:
        app = Flask(__name__)
        app.add_url_rule("/x", "x", lambda: "x")
        observability.init_app(app)
        return app

    first, second = create_app(), create_app()
    first.test_client().get("/x")
    second.test_client().get("/x")
    assert count(registry, http_route="/x") == 2
    assert first.extensions["obs"] is observability
    scrape = second.test_client().get("/metrics").text
    assert 'http_route="/x"' in scrape


def test_every_metrics_endpoint_answers_the_same_with_basic_auth(
    registry: CollectorRegistry,
) -> None:
    """WSGI app, Flask route and start_metrics_server (Django's view and ASGI's app are tested
    with their frameworks) share one core: same auth, negotiation and registry."""
    import base64

    import httpx

    from obs.prometheus.exposition import start_metrics_server
    from tests.conftest import free_port

    Call(middleware(hello, registry)).body()
    good = "Basic " + base64.b64encode(b"scraper:s3cret").decode()
    bad = "Basic " + base64.b64encode(b"scraper:wrong").decode()
    auth = {"username": "scraper", "password": "s3cret"}

    wsgi = make_metrics_app(registry, **auth)
    app = Flask(__name__)
    instrument(
        app, registry=registry, settings=Settings.from_env({}), access_log=False,
        metrics_username="scraper", metrics_password="s3cret",
    )  # fmt: skip
    flask_client = app.test_client()
    port = free_port()
    server, thread = start_metrics_server(port, registry=registry, **auth)
    try:

        def hello_lines(body: str) -> str:  # the scrapes themselves are counted in between
            return "\n".join(x for x in body.splitlines() if "/hello/{name}" in x)

        def scrape(authorization: str | None, accept: str = "") -> tuple[int, str, str]:
            headers = {"Accept": accept} if accept else {}
            if authorization:
                headers["Authorization"] = authorization
            environ = {f"HTTP_{k.upper()}": v for k, v in headers.items()}
            call = Call(wsgi, "/metrics", **environ)
            flask = flask_client.get("/metrics", headers=headers)
            own = httpx.get(f"http://127.0.0.1:{port}/metrics", headers=headers, timeout=10)
            answers = {
                (
                    int(call.status[:3]),
                    call.headers["Content-Type"],
                    hello_lines(call.body().decode()),
                ),
                (flask.status_code, flask.headers["Content-Type"], hello_lines(flask.text)),
                (own.status_code, own.headers["content-type"], hello_lines(own.text)),
            }
            assert len(answers) == 1, answers
            return answers.pop()

        assert scrape(None)[0] == 401
        assert scrape(bad)[0] == 401
        status, content_type, body = scrape(good, OPENMETRICS)
        assert status == 200 and content_type.startswith("application/openmetrics-text")
        assert 'http_route="/hello/{name}"' in body and "# {request_id=" in body
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_start_metrics_server_serves_the_multiprocess_aggregate(tmp_path: Any) -> None:
    """Another process's request is in what start_metrics_server serves, as in make_metrics_app."""
    from tests.conftest import free_port, run_python

    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "OBS_ACCESS_LOG": "false"}
    writer = run_python(
        "from obs.wsgi import ObservabilityMiddleware\n"
        "from tests.test_wsgi import Call, hello\n"
        "Call(ObservabilityMiddleware(hello), '/hello/x').body()\n",
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert writer.returncode == 0, writer.stderr
    port = free_port()
    reader = run_python(
        "import httpx\n"
        "from obs.prometheus.exposition import start_metrics_server\n"
        "from obs.wsgi import make_metrics_app\n"
        "from tests.test_wsgi import Call\n"
        f"server, thread = start_metrics_server({port})\n"
        f"own = httpx.get('http://127.0.0.1:{port}/metrics', timeout=10).text\n"
        "app = Call(make_metrics_app(), '/metrics').body().decode()\n"
        "line = 'http_server_request_duration_seconds_count{'\n"
        "print([l.rsplit(' ', 1)[1] for l in own.splitlines() if l.startswith(line)])\n"
        "print([l.rsplit(' ', 1)[1] for l in app.splitlines() if l.startswith(line)])\n",
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert reader.returncode == 0, reader.stderr
    own, app = reader.stdout.splitlines()
    assert own == app == "['1.0']"


@pytest.mark.parametrize("access_log", [True, False])
def test_the_request_size_histogram_reads_the_length_with_or_without_the_access_line(
    registry: CollectorRegistry, log: io.StringIO, access_log: bool
) -> None:
    app = middleware(hello, registry, record_body_sizes=True, access_log=access_log)
    Call(app, "/upload", REQUEST_METHOD="POST", CONTENT_LENGTH="2000").body()
    labels = {
        "http_request_method": "POST",
        "http_route": "/hello/{name}",
        "http_response_status_code": "200",
    }
    assert registry.get_sample_value("http_server_request_body_size_bytes_sum", labels) == 2000
    assert len(access(log)) == (1 if access_log else 0)


def test_an_observed_flask_app_under_a2wsgi_in_an_observed_asgi_app_joins_its_request(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    """a2wsgi's environ carries the ASGI scope, and obs.asgi's observation in it: the inner
    middleware joins it. Before, each request was counted and logged twice (``/legacy/{path}``
    by the outer middleware, ``/users/<int:id>`` by the inner one)."""
    import asyncio

    import httpx
    from a2wsgi import WSGIMiddleware
    from fastapi import FastAPI

    import obs.asgi

    legacy = Flask("legacy")
    legacy.add_url_rule("/users/<int:user_id>", "user", lambda user_id: str(user_id))
    legacy.add_url_rule("/boom", "boom", lambda: 1 / 0)
    instrument(legacy, registry=CollectorRegistry(), metrics_path=None)  # the outer's options win
    api = FastAPI()
    api.mount("/t/{tenant}/legacy", WSGIMiddleware(legacy))  # type: ignore[arg-type]
    app = obs.asgi.ObservabilityMiddleware(api, registry=registry, settings=Settings.from_env({}))

    async def run() -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/t/acme/legacy/users/7", headers={"X-Request-ID": "o-1"})
            assert response.text == "7" and response.headers.get_list("X-Request-ID") == ["o-1"]
            assert (await client.get("/t/acme/legacy/boom")).status_code == 500
            assert (await client.get("/t/acme/legacy/nowhere")).status_code == 404

    asyncio.run(run())
    lines = [(r["http_route"], r["status"], r.get("error_type")) for r in access(log)]
    assert lines == [
        ("/t/{tenant}/legacy/users/<int:user_id>", 200, None),
        ("/t/{tenant}/legacy/boom", 500, "ZeroDivisionError"),
        ("_unmatched", 404, None),
    ]
    assert access(log)[0]["request_id"] == "o-1"
    route = "/t/{tenant}/legacy/users/<int:user_id>"
    assert count(registry, http_route=route, http_response_status_code="200") == 1
    assert count(registry) == 3 and active(registry) == 0
