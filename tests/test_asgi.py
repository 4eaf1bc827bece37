from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from obs.asgi import ObservabilityMiddleware, make_metrics_app
from obs.config import Settings
from obs.logs.redaction import MASK
from obs.metrics import REQUEST_DURATION
from tests.asgi_client import call, http_scope, request
from tests.conftest import access, count


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def hello(request: Request) -> PlainTextResponse:
    structlog.get_logger("handler").info("inside")
    return PlainTextResponse("hi")


def sync_hello(request: Request) -> PlainTextResponse:  # run in a thread pool by Starlette
    structlog.get_logger("handler").info("inside sync")
    return PlainTextResponse("sync")


def starlette_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/items/{item_id:int}", hello),
            Route("/sync/{name}", sync_hello),
            Mount("/api", routes=[Route("/users/{name}", hello)]),
        ]
    )


def settings(**kw: Any) -> Settings:
    return Settings.from_env({}, service_name="t", **kw)


def test_route_templates_mounts_and_unmatched(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    app = ObservabilityMiddleware(starlette_app(), registry=registry, settings=settings())
    assert request(app, "/items/1").status == 200
    assert request(app, "/items/2").status == 200
    assert request(app, "/api/users/ann").status == 200
    assert request(app, "/nowhere").status == 404
    assert count(registry, http_route="/items/{item_id:int}", http_response_status_code="200") == 2
    assert count(registry, http_route="/api/users/{name}") == 1
    assert count(registry, http_route="_unmatched", http_response_status_code="404") == 1


def test_proxy_root_path_is_not_part_of_the_route(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    app = ObservabilityMiddleware(starlette_app(), registry=registry, settings=settings())
    assert request(app, "/prefix/api/users/bo", root_path="/prefix").status == 200
    assert count(registry, http_route="/api/users/{name}") == 1


def test_other_scopes_pass_through_untouched(registry: CollectorRegistry) -> None:
    seen: list[Any] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope, receive, send))

    app = ObservabilityMiddleware(inner, registry=registry, settings=settings())
    scope = {"type": "lifespan"}

    async def receive() -> dict[str, Any]:
        return {}

    async def send(message: Any) -> None:
        pass

    asyncio.run(app(scope, receive, send))
    assert seen == [(scope, receive, send)]


def test_building_twice_on_one_registry_is_fine(registry: CollectorRegistry) -> None:
    # Frameworks rebuild their middleware stack: the second build must reuse the metrics.
    first = ObservabilityMiddleware(starlette_app(), registry=registry, settings=settings())
    second = ObservabilityMiddleware(starlette_app(), registry=registry, settings=settings())
    request(first, "/items/1")
    request(second, "/items/2")
    assert count(registry, http_route="/items/{item_id:int}") == 2
    names = [metric.name for metric in registry.collect()]
    assert names.count("http_server_request_duration_seconds") == 1


def test_request_id_generated_bound_and_returned(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    app = ObservabilityMiddleware(starlette_app(), registry=registry, settings=settings())
    exchange = request(app, "/items/5")
    request_id = exchange.headers[b"x-request-id"].decode()
    assert len(request_id) == 32 and int(request_id, 16) >= 0
    inside, line = lines(log)
    assert inside["event"] == "inside" and inside["request_id"] == request_id
    assert line["request_id"] == request_id
    assert structlog.contextvars.get_contextvars() == {}  # reset afterwards


def test_sync_handlers_in_a_thread_pool_see_the_request_id(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    app = ObservabilityMiddleware(starlette_app(), registry=registry, settings=settings())
    exchange = request(app, "/sync/x", headers=[(b"x-request-id", b"abc-123")])
    assert exchange.headers[b"x-request-id"] == b"abc-123"
    assert [r["request_id"] for r in lines(log)] == ["abc-123", "abc-123"]


@pytest.mark.parametrize(
    "incoming", [b"x" * 129, b"a\r\nb", b"a\x00b", b"caf\xc3\xa9", b"two words", b""]
)
def test_unsafe_request_ids_are_replaced(
    incoming: bytes, registry: CollectorRegistry, log: io.StringIO
) -> None:
    app = ObservabilityMiddleware(starlette_app(), registry=registry, settings=settings())
    returned = request(app, "/items/1", headers=[(b"x-request-id", incoming)]).headers[
        b"x-request-id"
    ]
    assert returned != incoming and len(returned) == 32


def test_traceparent_binds_trace_id_and_reaches_the_exemplar(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    header = f"00-{trace}-00f067aa0ba902b7-01".encode()
    app = ObservabilityMiddleware(starlette_app(), registry=registry, settings=settings())
    request(app, "/items/1", headers=[(b"traceparent", header)])
    assert {r["trace_id"] for r in lines(log)} == {trace}
    exemplars = [
        s.exemplar for m in registry.collect() for s in m.samples if s.exemplar is not None
    ]
    assert exemplars and exemplars[0].labels["trace_id"] == trace


def test_exception_before_response_is_500_recorded_and_reraised(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("no")

    app = ObservabilityMiddleware(failing, registry=registry, settings=settings())
    exchange = request(app, "/x")
    assert isinstance(exchange.raised, ValueError)
    assert exchange.status == 500 and b"x-request-id" in exchange.headers
    assert count(registry, http_response_status_code="500", error_type="ValueError") == 1
    assert (
        registry.get_sample_value(
            "http_server_exceptions_total", {"http_route": "_unmatched", "error_type": "ValueError"}
        )
        == 1
    )
    (line,) = access(log)
    assert line["level"] == "error" and line["exception"][0]["exc_type"] == "ValueError"
    assert (
        registry.get_sample_value("http_server_active_requests", {"http_request_method": "GET"})
        == 0
    )


@pytest.mark.parametrize(("http_version", "close"), [("1.1", True), ("1.0", True), ("2", False)])
def test_our_500_for_an_app_that_raised_says_the_connection_closes_on_http1(
    registry: CollectorRegistry, log: io.StringIO, http_version: str, close: bool
) -> None:
    """The server closes the connection of a request that raised: a keep-alive client must be
    told, as the server's own 500 tells it (HTTP/2 forbids the header)."""

    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise ValueError("no")

    async def silent(scope: Any, receive: Any, send: Any) -> None:
        return None  # no response, no exception: the server keeps the connection

    for app, says_close in ((failing, close), (silent, False)):
        observed = ObservabilityMiddleware(app, registry=registry, settings=settings())
        scope = http_scope("/x")
        scope["http_version"] = http_version
        exchange = asyncio.run(call(observed, scope))
        assert exchange.status == 500
        assert (exchange.headers.get(b"connection") == b"close") is says_close


def test_exception_after_response_started_keeps_the_status(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    async def half(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError("mid-stream")

    app = ObservabilityMiddleware(half, registry=registry, settings=settings())
    exchange = request(app, "/x")
    assert isinstance(exchange.raised, RuntimeError)
    assert [m["type"] for m in exchange.messages] == ["http.response.start", "http.response.body"]
    assert count(registry, http_response_status_code="200", error_type="RuntimeError") == 1


def test_5xx_without_exception_is_labelled_by_status(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    async def unavailable(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 503, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    request(ObservabilityMiddleware(unavailable, registry=registry, settings=settings()), "/")
    assert count(registry, http_response_status_code="503", error_type="503") == 1


def test_cancellation_is_499_and_active_goes_back_down(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(10)

    app = ObservabilityMiddleware(slow, registry=registry, settings=settings())

    async def run() -> None:
        task = asyncio.create_task(app(http_scope("/slow"), None, None))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        active = {"http_request_method": "GET"}
        assert registry.get_sample_value("http_server_active_requests", active) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert registry.get_sample_value("http_server_active_requests", active) == 0

    asyncio.run(run())
    assert count(registry, http_response_status_code="499", error_type="CancelledError") == 1


def test_clock_covers_streaming_but_not_background_work(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    async def streaming_then_background(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(3):
            await asyncio.sleep(0.05)
            await send({"type": "http.response.body", "body": b"x", "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        at_last_byte.append(registry.get_sample_value(REQUEST_DURATION + "_sum", labels))
        await asyncio.sleep(0.3)  # a background task after the response

    labels = {
        "http_request_method": "GET",
        "http_route": "_unmatched",
        "http_response_status_code": "200",
        "error_type": "",
    }
    at_last_byte: list[float | None] = []
    app = ObservabilityMiddleware(streaming_then_background, registry=registry, settings=settings())
    request(app, "/s")
    total = registry.get_sample_value(REQUEST_DURATION + "_sum", labels)
    # Recorded at the last byte (three 50 ms sleeps of streaming), nothing added after it.
    assert total is not None and total >= 0.14 and at_last_byte == [total]
    assert access(log)[0]["bytes_out"] == 3


def test_cardinality_is_capped_even_with_raw_path_routes(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    async def ok(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = ObservabilityMiddleware(
        ok,
        registry=registry,
        settings=settings(access_log=False),
        max_routes=3,
        route_getter=lambda scope, root: scope["path"],  # a router that leaks raw paths
    )
    for i in range(50):
        request(app, f"/u/{i}", method="GET" if i % 2 else "BREW")
    routes = {
        s.labels["http_route"]
        for m in registry.collect()
        for s in m.samples
        if s.name == REQUEST_DURATION + "_count"
    }
    methods = {
        s.labels["http_request_method"]
        for m in registry.collect()
        for s in m.samples
        if s.name == REQUEST_DURATION + "_count"
    }
    assert routes == {"/u/0", "/u/1", "/u/2", "_overflow"}
    assert methods == {"GET", "_OTHER"}


def test_a_failing_route_getter_does_not_break_the_request(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    def broken(scope: Any, root: str) -> str:
        raise KeyError("router internals changed")

    app = ObservabilityMiddleware(
        starlette_app(), registry=registry, settings=settings(), route_getter=broken
    )
    assert request(app, "/items/1").body == b"hi"
    assert (
        registry.get_sample_value("obs_internal_errors_total", {"component": "route template"}) == 1
    )


def test_excluded_paths_sampling_and_levels(registry: CollectorRegistry, log: io.StringIO) -> None:
    async def status_from_path(scope: Any, receive: Any, send: Any) -> None:
        status = int(scope["path"].rsplit("/", 1)[-1]) if scope["path"][-1].isdigit() else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = ObservabilityMiddleware(
        status_from_path, registry=registry, settings=settings(access_log_sample=0.0)
    )
    for path in ("/health", "/ok/200", "/missing/404", "/broken/500"):
        request(app, path)
    assert [(r["path"], r["level"]) for r in access(log)] == [
        ("/missing/404", "warning"),
        ("/broken/500", "error"),
    ]
    assert count(registry) == 4  # excluded and sampled-out requests are still measured


def test_access_line_fields_and_query_redaction(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    app = ObservabilityMiddleware(starlette_app(), registry=registry, settings=settings())
    request(
        app,
        "/items/9",
        query=b"page=2&token=s3cret&API_KEY=k",
        headers=[(b"user-agent", b"curl/8"), (b"authorization", b"Bearer zzz")],
    )
    (line,) = access(log)
    assert line["query"] == f"page=2&token={MASK}&API_KEY={MASK}"
    assert (
        line
        | {
            "http_request_method": "GET",
            "http_route": "/items/{item_id:int}",
            "path": "/items/9",
            "status": 200,
            "bytes_out": 2,
            "client_addr": "127.0.0.1:5000",
            "user_agent": "curl/8",
            "logger": "obs.access",
            "service": "t",
        }
        == line
    )
    assert "zzz" not in log.getvalue() and "s3cret" not in log.getvalue()
    assert line["duration_ms"] > 0


def test_body_sizes_are_opt_in_and_count_real_bytes(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    async def echo(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body * 2})

    app = ObservabilityMiddleware(
        echo, registry=registry, settings=settings(), record_body_sizes=True
    )
    request(app, "/echo", method="POST", body=[b"abc", b"de"])
    labels = {
        "http_request_method": "POST",
        "http_route": "_unmatched",
        "http_response_status_code": "200",
    }
    assert registry.get_sample_value("http_server_request_body_size_bytes_sum", labels) == 5
    assert registry.get_sample_value("http_server_response_body_size_bytes_sum", labels) == 10
    assert access(log)[0]["bytes_in"] == 5


def test_metrics_app_negotiates_openmetrics_with_exemplars(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    app = ObservabilityMiddleware(starlette_app(), registry=registry, settings=settings())
    rid = request(app, "/items/3").headers[b"x-request-id"].decode()
    metrics = make_metrics_app(registry)
    plain = request(metrics, "/metrics")
    assert plain.headers[b"content-type"].startswith(b"text/plain")
    assert b"# EOF" not in plain.body
    om = request(
        metrics, "/metrics", headers=[(b"accept", b"application/openmetrics-text; version=1.0.0")]
    )
    assert om.headers[b"content-type"].startswith(b"application/openmetrics-text")
    exemplars = [
        s.exemplar
        for family in parse_om(om.body.decode())
        for s in family.samples
        if s.exemplar is not None
    ]
    assert [e.labels["request_id"] for e in exemplars] == [rid]
    gzipped = request(metrics, "/metrics", headers=[(b"accept-encoding", b"gzip")])
    assert gzipped.headers[b"content-encoding"] == b"gzip"


def test_build_info_names_the_service(registry: CollectorRegistry) -> None:
    ObservabilityMiddleware(
        starlette_app(), registry=registry, settings=settings(service_version="1.2")
    )
    assert registry.get_sample_value("obs_build_info", {"service": "t", "version": "1.2"}) == 1


def test_an_app_that_sets_its_own_request_id_sends_one_header_ours(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"X-Request-ID", b"app-made"), (b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    observed = ObservabilityMiddleware(app, registry=registry, settings=settings())
    exchange = request(observed, "/x", headers=[(b"x-request-id", b"client-id")])
    start = next(m for m in exchange.messages if m["type"] == "http.response.start")
    sent = [v for k, v in start["headers"] if k.lower() == b"x-request-id"]
    assert sent == [b"client-id"]
    assert access(log)[0]["request_id"] == "client-id"


def test_added_with_add_middleware_the_apps_own_500_handler_answers(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    """Starlette's error handler sits outside the user's middleware: obs inside it lets the
    exception reach it, as any middleware there does, and still records the failure."""
    from starlette.responses import JSONResponse

    async def boom(request: Request) -> PlainTextResponse:
        raise RuntimeError("no")

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": "custom"}, status_code=500)

    app = Starlette(routes=[Route("/boom", boom)], exception_handlers={Exception: on_error})
    app.add_middleware(ObservabilityMiddleware, registry=registry, settings=settings())
    exchange = request(app, "/boom")
    assert isinstance(exchange.raised, RuntimeError)  # Starlette re-raises to the server
    assert exchange.status == 500 and exchange.body == b'{"error":"custom"}'
    assert exchange.headers[b"content-type"] == b"application/json"
    (line,) = access(log)
    assert line["status"] == 500 and line["error_type"] == "RuntimeError"
    assert line["http_route"] == "/boom"
    assert count(registry, http_response_status_code="500", error_type="RuntimeError") == 1


def test_a_background_task_that_raises_is_counted_and_names_its_request(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    import logging

    from starlette.background import BackgroundTask

    async def later() -> None:
        raise RuntimeError("in the background")

    async def accepted(request: Request) -> PlainTextResponse:
        return PlainTextResponse("accepted", background=BackgroundTask(later))

    app = ObservabilityMiddleware(
        Starlette(routes=[Route("/jobs", accepted)]), registry=registry, settings=settings()
    )
    exchange = request(app, "/jobs")
    assert exchange.status == 200 and isinstance(exchange.raised, RuntimeError)
    (line,) = access(log)  # the response was complete: a 200, written before the task ran
    assert line["status"] == 200
    assert (
        registry.get_sample_value(
            "http_server_exceptions_total", {"http_route": "/jobs", "error_type": "RuntimeError"}
        )
        == 1
    )
    # The line the server writes about it (uvicorn: "Exception in ASGI application") keeps
    # the traceback and names the request.
    try:
        raise exchange.raised
    except RuntimeError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    server_line = lines(log)[-1]
    assert server_line["request_id"] == line["request_id"]
    assert server_line["exception"][0]["exc_type"] == "RuntimeError"


@pytest.mark.parametrize("kind", ["pathsend", "zerocopysend"])
def test_a_body_sent_from_a_file_counts_its_bytes_and_stops_the_clock(
    registry: CollectorRegistry, log: io.StringIO, kind: str, tmp_path: Any
) -> None:
    path = tmp_path / "report.csv"
    path.write_bytes(b"x" * 5000)

    async def from_file(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if kind == "pathsend":
            await send({"type": "http.response.pathsend", "path": str(path)})
        else:
            with path.open("rb") as file:
                await send({"type": "http.response.zerocopysend", "file": file, "offset": 1000})
        await asyncio.sleep(0.3)  # work after the last byte is not the request's

    app = ObservabilityMiddleware(
        from_file, registry=registry, settings=settings(), record_body_sizes=True
    )
    assert request(app, "/report").status == 200
    (line,) = access(log)
    expected = 5000 if kind == "pathsend" else 4000
    assert line["bytes_out"] == expected
    assert line["duration_ms"] < 300
    labels = {
        "http_request_method": "GET",
        "http_route": "_unmatched",
        "http_response_status_code": "200",
    }
    assert registry.get_sample_value("http_server_response_body_size_bytes_sum", labels) == expected
