"""The issue-15 "Why" items that need no real server: each failed on main before the fix."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI
from litestar import Litestar, get
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

import obs
from obs.asgi import ObservabilityMiddleware
from obs.config import Settings
from obs.integrations.litestar import ObservabilityPlugin
from tests.asgi_client import Exchange, http_scope, request
from tests.conftest import access, count, run_python


def settings(**kw: Any) -> Settings:
    return Settings.from_env({}, service_name="t", **kw)


def fastapi_app() -> FastAPI:
    users = APIRouter()

    @users.get("/{user_id}")
    async def get_user(user_id: str) -> dict[str, str]:
        return {"user_id": user_id}

    orders = APIRouter(prefix="/orders")

    @orders.get("/{oid}")
    async def get_order(oid: str) -> dict[str, str]:
        return {"oid": oid}

    v1 = APIRouter(prefix="/v1")
    v1.include_router(orders)
    app = FastAPI()
    app.include_router(users, prefix="/users")
    app.include_router(users, prefix="/admins")
    app.include_router(v1)
    return app


def test_fastapi_router_under_two_prefixes_and_nested_routers(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    app = ObservabilityMiddleware(fastapi_app(), registry=registry, settings=settings())
    for path in ("/users/1", "/admins/2", "/v1/orders/3"):
        assert request(app, path).status == 200
    assert count(registry, http_route="/users/{user_id}") == 1
    assert count(registry, http_route="/admins/{user_id}") == 1
    assert count(registry, http_route="/v1/orders/{oid}") == 1


def test_mount_parameters_are_templates_not_raw_values(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    async def items(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    inner = Starlette(routes=[Mount("/t/{tenant}", routes=[Route("/items", items)])])
    app = ObservabilityMiddleware(inner, registry=registry, settings=settings(), max_routes=50)
    for i in range(120):
        assert request(app, f"/t/tenant-{i}/items").status == 200
    assert count(registry, http_route="/t/{tenant}/items") == 120
    assert count(registry, http_route="_overflow") == 0
    assert {line["http_route"] for line in access(log)} == {"/t/{tenant}/items"}


def test_litestar_handler_exception_is_visible_with_the_plugin(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    @get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    inner = Litestar([boom], plugins=[ObservabilityPlugin()], logging_config=None)
    exchange = request(
        ObservabilityMiddleware(inner, registry=registry, settings=settings()), "/boom"
    )
    assert exchange.status == 500
    assert count(registry, http_route="/boom", error_type="RuntimeError") == 1
    exceptions = {"http_route": "/boom", "error_type": "RuntimeError"}
    assert registry.get_sample_value("http_server_exceptions_total", exceptions) == 1
    (line,) = access(log)
    assert line["exception"][0]["exc_type"] == "RuntimeError"


async def _hang_up_mid_stream(app: Any) -> Exchange:
    """A client that reads the head and one chunk, then goes away (the server says so)."""
    exchange = Exchange()
    gone = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        exchange.messages.append(message)
        if message["type"] == "http.response.body":
            gone.set()

    await app(http_scope("/s"), receive, send)
    return exchange


def test_client_gone_mid_stream_is_499_with_the_bytes_sent(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    async def streaming(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"12345", "more_body": True})
        if (await receive())["type"] == "http.disconnect":
            return  # as Starlette's StreamingResponse does
        await send({"type": "http.response.body", "body": b"rest"})

    app = ObservabilityMiddleware(streaming, registry=registry, settings=settings())
    asyncio.run(_hang_up_mid_stream(app))
    assert count(registry, http_response_status_code="499") == 1
    (line,) = access(log)
    assert line["status"] == 499 and line["bytes_out"] == 5


def test_a_send_that_raises_means_the_client_went_away(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    async def streaming(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"12345", "more_body": True})
        await send({"type": "http.response.body", "body": b"rest"})

    sent: list[Any] = []

    async def failing_send(message: Any) -> None:
        if len(sent) == 2:
            raise OSError("client disconnected")
        sent.append(message)

    app = ObservabilityMiddleware(streaming, registry=registry, settings=settings())

    async def run() -> None:
        try:
            await app(http_scope("/s"), None, failing_send)  # type: ignore[arg-type]
        except OSError:
            pass

    asyncio.run(run())
    (line,) = access(log)
    assert line["status"] == 499 and line["bytes_out"] == 5


def test_statuses_recorded_are_the_ones_the_client_got(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    async def no_response(scope: Any, receive: Any, send: Any) -> None:
        return

    async def two_starts(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            await send({"type": "http.response.start", "status": 404, "headers": []})
        except RuntimeError:
            pass
        await send({"type": "http.response.body", "body": b"x"})

    async def raises_cancelled(scope: Any, receive: Any, send: Any) -> None:
        raise asyncio.CancelledError()

    exchange = request(ObservabilityMiddleware(no_response, registry=registry), "/none")
    assert exchange.status == 500 and b"x-request-id" in exchange.headers
    assert count(registry, http_response_status_code="500", error_type="500") == 1

    async def strict_send(messages: list[Any], message: Any) -> None:
        if message["type"] == "http.response.start" and messages:
            raise RuntimeError("Expected ASGI message 'http.response.body'")  # as uvicorn
        messages.append(message)

    async def run_two_starts() -> list[Any]:
        messages: list[Any] = []
        app = ObservabilityMiddleware(two_starts, registry=registry, settings=settings())
        await app(http_scope("/two"), None, lambda m: strict_send(messages, m))  # type: ignore[arg-type]
        return messages

    asyncio.run(run_two_starts())
    assert count(registry, http_response_status_code="200") == 1
    assert count(registry, http_response_status_code="404") == 0

    exchange = request(ObservabilityMiddleware(raises_cancelled, registry=registry), "/c")
    assert exchange.status == 500
    assert count(registry, http_response_status_code="500", error_type="CancelledError") == 1
    assert count(registry, http_response_status_code="499") == 0


def test_label_sets_are_capped_across_methods_and_statuses(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    async def echo_status(scope: Any, receive: Any, send: Any) -> None:
        status = int(scope["path"].strip("/"))
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = ObservabilityMiddleware(
        echo_status, registry=registry, settings=settings(access_log=False), max_label_sets=50
    )
    methods = ("GET", "POST", "PUT", "DELETE", "PATCH")
    for method in methods:
        for status in range(200, 600, 7):
            request(app, f"/{status}", method=method)
    children = [
        s
        for metric in registry.collect()
        for s in metric.samples
        if s.name == "http_server_request_duration_seconds_count"
    ]
    assert len(children) <= 50 + 10
    assert sum(s.value for s in children) == len(methods) * len(range(200, 600, 7))


def test_statuses_outside_100_599_are_one_value(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    async def odd(scope: Any, receive: Any, send: Any) -> None:
        status = int(scope["path"].strip("/"))
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = ObservabilityMiddleware(odd, registry=registry, settings=settings())
    for status in (42, 600, 999, 1234):
        request(app, f"/{status}")
    assert count(registry, http_response_status_code="_OTHER") == 4


def test_a_level_field_changes_neither_level_nor_series(registry: CollectorRegistry) -> None:
    out = io.StringIO()
    obs.configure_logging(log_format="json", stream=out, registry=registry)
    log = structlog.get_logger("app")
    for value in range(5):
        log.info("done", level=value)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {line["level"] for line in lines} == {"info"}
    assert [line["level_field"] for line in lines] == [0, 1, 2, 3, 4]
    series = {
        s.labels["level"]
        for metric in registry.collect()
        for s in metric.samples
        if s.name == "obs_log_events_total"
    }
    assert series == {"info"}


def test_python_warnings_go_through_the_pipeline() -> None:
    # A fresh interpreter: pytest's own warning capture would stand in between here.
    done = run_python(
        "import warnings, obs\n"
        "obs.configure_logging(log_format='json')\n"
        "warnings.warn('old api', DeprecationWarning, stacklevel=1)\n",
        env={"PYTHONWARNINGS": "always"},
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["logger"] for line in lines if "old api" in line["event"]] == ["py.warnings"]
    assert "old api" not in done.stderr


def test_server_access_loggers_off_by_default() -> None:
    out = io.StringIO()
    access_logger = logging.getLogger("uvicorn.access")
    access_logger.addHandler(logging.StreamHandler(io.StringIO()))
    obs.configure_logging(log_format="json", stream=out)
    access_logger.info('127.0.0.1 - "GET /?token=secret HTTP/1.1" 200')
    # hypercorn adds its handler when it starts serving, after the app configured logging.
    hypercorn_error = logging.getLogger("hypercorn.error")
    hypercorn_error.handlers = [logging.StreamHandler(io.StringIO())]
    hypercorn_error.error("Error in ASGI Framework")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert not any("token=secret" in line["event"] for line in lines)
    assert [line["logger"] for line in lines if "ASGI Framework" in line["event"]] == [
        "hypercorn.error"
    ]
    assert hypercorn_error.handlers == []
    kept = io.StringIO()
    obs.configure_logging(log_format="json", stream=kept, server_access_logs=True)
    access_logger.info("GET / 200")
    assert [json.loads(line)["logger"] for line in kept.getvalue().splitlines()] == [
        "uvicorn.access"
    ]
    logging.captureWarnings(False)


APP = """
import asyncio, sys
sys.path.insert(0, {root!r})
from tests.asgi_client import request
from obs.asgi import ObservabilityMiddleware

async def ok(scope, receive, send):
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": b"ok"}})

exchange = request(ObservabilityMiddleware(ok), "/hello")
print("RID", dict(exchange.headers)[b"x-request-id"].decode())
"""


def test_access_line_without_configure_logging_uses_structlog_defaults() -> None:
    from tests.conftest import ROOT

    done = run_python(APP.format(root=str(ROOT)))
    assert done.returncode == 0, done.stderr
    request_id = done.stdout.split("RID ")[1].strip()
    (line,) = [line for line in done.stdout.splitlines() if "request" in line and "RID" not in line]
    assert request_id in line and "/hello" in line
    assert "log sink failed" not in done.stderr


def test_access_line_through_the_apps_own_structlog_configuration() -> None:
    from tests.conftest import ROOT

    configure = (
        "import structlog\n"
        "structlog.configure(processors=[structlog.contextvars.merge_contextvars,"
        " structlog.processors.add_log_level, structlog.processors.JSONRenderer()])\n"
    )
    done = run_python(configure + APP.format(root=str(ROOT)))
    assert done.returncode == 0, done.stderr
    request_id = done.stdout.split("RID ")[1].strip()
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    (line,) = [r for r in records if r.get("event") == "request"]
    assert line["request_id"] == request_id and line["path"] == "/hello"
    assert line["status"] == 200 and line["level"] == "info"
