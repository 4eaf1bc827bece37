"""The middleware never breaks the app: faults inside obs, hostile input, behaviour preserved."""

from __future__ import annotations

import io
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

import obs
from obs.asgi import ObservabilityMiddleware, make_metrics_app
from obs.config import Settings
from obs.metrics import get_metrics
from tests.asgi_client import Exchange, request

HEX32 = re.compile(r"^[0-9a-f]{32}$")


async def text(request: Request) -> Response:
    return PlainTextResponse("hello", headers={"x-app": "1", "set-cookie": "a=b"})


async def no_content(request: Request) -> Response:
    return Response(status_code=204)


async def not_modified(request: Request) -> Response:
    return Response(status_code=304, headers={"etag": '"v1"'})


async def upload(request: Request) -> Response:
    body = await request.body()
    return PlainTextResponse(f"{len(body)}")


async def sse(request: Request) -> Response:
    async def events() -> Any:
        for i in range(3):
            yield f"data: {i}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


async def with_background(request: Request) -> Response:
    return PlainTextResponse("bg", background=BackgroundTask(lambda: None))


def app() -> Starlette:
    return Starlette(
        routes=[
            Route("/text", text, methods=["GET", "HEAD"]),
            Route("/204", no_content),
            Route("/304", not_modified),
            Route("/upload", upload, methods=["POST"]),
            Route("/sse", sse),
            Route("/bg", with_background),
        ]
    )


def observed(registry: CollectorRegistry, **kw: Any) -> ObservabilityMiddleware:
    return ObservabilityMiddleware(
        app(), registry=registry, settings=Settings.from_env({}, service_name="r"), **kw
    )


def without_request_id(exchange: Exchange) -> list[dict[str, Any]]:
    messages = []
    for message in exchange.messages:
        if message["type"] == "http.response.start":
            headers = [h for h in message["headers"] if h[0] != b"x-request-id"]
            message = {**message, "headers": headers}
        messages.append(message)
    return messages


CORPUS: list[dict[str, Any]] = [
    {"path": "/text"},
    {"path": "/text", "method": "HEAD"},
    {"path": "/204"},
    {"path": "/304"},
    {"path": "/upload", "method": "POST", "body": [b"x" * 65536] * 32},  # 2 MiB in 32 chunks
    {"path": "/sse"},
    {"path": "/bg"},
    {"path": "/missing"},
    {"path": "/text", "method": "DELETE"},
]


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: f"{c.get('method', 'GET')} {c['path']}")
def test_responses_are_byte_identical_but_for_the_request_id(
    case: dict[str, Any], registry: CollectorRegistry
) -> None:
    obs.configure_logging(log_format="json", stream=io.StringIO(), registry=registry)
    bare = request(app(), **case)
    wrapped = request(observed(registry), **case)
    assert without_request_id(wrapped) == bare.messages
    assert HEX32.match(wrapped.headers[b"x-request-id"].decode())


def test_a_full_disk_for_logs_costs_no_request(
    registry: CollectorRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    with open("/dev/full", "w") as full:  # every write fails with ENOSPC
        obs.configure_logging(log_format="json", stream=full, registry=registry)
        before = (
            REGISTRY.get_sample_value("obs_internal_errors_total", {"component": "log sink"}) or 0
        )
        middleware = observed(registry)
        for _ in range(20):
            assert request(middleware, "/text").body == b"hello"
    after = REGISTRY.get_sample_value("obs_internal_errors_total", {"component": "log sink"})
    assert after == before + 20
    err = capsys.readouterr().err
    assert err.count("obs: log sink failed (OSError: [Errno 28] No space left on device)") == 1


def test_a_raising_metric_costs_no_request(
    registry: CollectorRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    obs.configure_logging(log_format="json", stream=io.StringIO(), registry=registry)
    middleware = observed(registry)
    request(middleware, "/text")  # create the child, then break it

    class Broken:
        def observe(self, *args: Any) -> None:
            raise RuntimeError("registry exploded")

        inc = dec = observe

    observer = middleware.observer
    observer._duration_children = dict.fromkeys(observer._duration_children, Broken())
    broken = Broken()
    observer.active_children = dict.fromkeys(
        observer.active_children, (broken.inc, broken.dec, broken)
    )
    for _ in range(5):
        exchange = request(middleware, "/text")
        assert exchange.status == 200 and exchange.body == b"hello"
    assert registry.get_sample_value("obs_internal_errors_total", {"component": "metrics"}) == 10
    assert capsys.readouterr().err.count("obs: metrics failed") == 1


def test_a_closed_log_stream_costs_no_request(registry: CollectorRegistry) -> None:
    stream = io.StringIO()
    obs.configure_logging(log_format="json", stream=stream, registry=registry)
    stream.close()
    assert request(observed(registry), "/text").body == b"hello"


def test_long_request_ids_never_break_the_openmetrics_exposition(
    registry: CollectorRegistry,
) -> None:
    obs.configure_logging(log_format="json", stream=io.StringIO(), registry=registry)
    middleware = observed(registry)
    for length in (32, 64, 78, 79, 100, 118, 119, 128):
        trace = f"00-{'ab' * 16}-{'cd' * 8}-01".encode()
        request(
            middleware, "/text", headers=[(b"x-request-id", b"r" * length), (b"traceparent", trace)]
        )
        body = request(
            make_metrics_app(registry),
            "/metrics",
            headers=[(b"accept", b"application/openmetrics-text")],
        ).body
        for family in parse_om(body.decode()):
            for sample in family.samples:
                if sample.exemplar is not None:
                    size = sum(len(k) + len(v) for k, v in sample.exemplar.labels.items())
                    assert size <= 128


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(request_id=st.binary(max_size=300), traceparent=st.binary(max_size=120))
def test_hostile_ids_never_reach_headers_or_logs_unescaped(
    request_id: bytes, traceparent: bytes
) -> None:
    registry = CollectorRegistry()
    out = io.StringIO()
    obs.configure_logging(log_format="json", stream=out, registry=registry)
    exchange = request(
        observed(registry),
        "/text",
        headers=[(b"x-request-id", request_id), (b"traceparent", traceparent)],
    )
    returned = exchange.headers[b"x-request-id"]
    assert returned == request_id or HEX32.match(returned.decode())
    assert all(0x21 <= byte < 0x7F for byte in returned)
    for raw_line in out.getvalue().splitlines():
        assert all(ch >= " " for ch in raw_line)  # no raw control character in a line
        record = json.loads(raw_line)
        assert record["request_id"] == returned.decode()
        trace_id = record.get("trace_id")
        assert trace_id is None or re.fullmatch(r"[0-9a-f]{32}", trace_id)


def test_secrets_in_headers_and_query_never_reach_a_log_line(registry: CollectorRegistry) -> None:
    out = io.StringIO()
    obs.configure_logging(log_format="json", stream=out, registry=registry)
    secrets = ["s3cr3t-bearer", "cookie-val", "key-123", "tok-456", "pw-789", "ak-000"]
    request(
        observed(registry),
        "/text",
        query=b"token=tok-456&password=pw-789&api_key=ak-000&page=1",
        headers=[
            (b"authorization", b"Bearer s3cr3t-bearer"),
            (b"cookie", b"session=cookie-val"),
            (b"x-api-key", b"key-123"),
        ],
    )
    obs.get_logger("app").info("handled", headers={"Authorization": "Bearer s3cr3t-bearer"})
    output = out.getvalue()
    assert "page=1" in output
    for secret in secrets:
        assert secret not in output


def test_metrics_endpoint_basic_auth(registry: CollectorRegistry) -> None:
    get_metrics(registry)
    metrics = make_metrics_app(registry, username="prom", password="pa55")
    assert request(metrics, "/metrics").status == 401
    wrong = request(metrics, "/metrics", headers=[(b"authorization", b"Basic cHJvbTp3cm9uZw==")])
    assert wrong.status == 401 and wrong.headers[b"www-authenticate"].startswith(b"Basic")
    right = request(metrics, "/metrics", headers=[(b"authorization", b"Basic cHJvbTpwYTU1")])
    assert right.status == 200 and b"# HELP" in right.body
    with pytest.raises(obs.ObsError, match="needs both"):
        make_metrics_app(registry, username="prom")


def test_huge_header_counts_cost_no_memory(registry: CollectorRegistry) -> None:
    import tracemalloc

    obs.configure_logging(log_format="json", stream=io.StringIO(), registry=registry)
    headers = [(f"x-filler-{i}".encode(), b"v" * 64) for i in range(20_000)]
    headers.append((b"x-request-id", b"kept-id"))
    middleware = observed(registry)
    request(middleware, "/text")  # warm up caches

    def peak(app: Any) -> int:
        tracemalloc.start()
        try:
            exchange = request(app, "/text", headers=headers)
            assert exchange.status == 200
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    bare_peak, observed_peak = peak(app()), peak(middleware)
    # obs keeps the few headers it reads, never a copy of them all.
    assert observed_peak - bare_peak < 256 * 1024, (bare_peak, observed_peak)


def test_response_set_cookie_never_reaches_a_log_line(registry: CollectorRegistry) -> None:
    out = io.StringIO()
    obs.configure_logging(log_format="json", stream=out, registry=registry)
    exchange = request(observed(registry), "/text")
    assert (b"set-cookie", b"a=b") in exchange.messages[0]["headers"]
    assert "a=b" not in out.getvalue() and "set-cookie" not in out.getvalue().lower()


def test_profile_token_is_compared_in_constant_time(
    registry: CollectorRegistry, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hmac

    from obs.profiling import request as profiling_request

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(profiling_request.hmac, "compare_digest", spy)
    settings = Settings.from_env(
        {}, profile_token="s3cret-token-0123456", profile_dir=str(tmp_path)
    )
    middleware = ObservabilityMiddleware(app(), registry=registry, settings=settings)
    for token in (b"s", b"s3cret-token-0123457", b"x" * 200):
        exchange = request(middleware, "/text", headers=[(b"x-obs-profile", token)])
        assert b"x-obs-profile-id" not in exchange.headers
    assert [a for a, _ in calls] == [b"s", b"s3cret-token-0123457", b"x" * 200]
    assert not list(tmp_path.iterdir())


def test_profiles_are_never_served_over_http(registry: CollectorRegistry, tmp_path: Any) -> None:
    obs.configure_logging(log_format="json", stream=io.StringIO(), registry=registry)
    settings = Settings.from_env(
        {}, profile_token="s3cret-token-0123456", profile_dir=str(tmp_path)
    )
    middleware = ObservabilityMiddleware(app(), registry=registry, settings=settings)
    profiled = request(middleware, "/text", headers=[(b"x-obs-profile", b"s3cret-token-0123456")])
    profile_id = profiled.headers[b"x-obs-profile-id"].decode()
    assert (tmp_path / f"{profile_id}.html").stat().st_mode & 0o777 == 0o600
    for path in (
        f"/{profile_id}.html",
        f"/profiles/{profile_id}.html",
        f"/{tmp_path}/{profile_id}.html",
    ):
        exchange = request(middleware, path)
        assert exchange.status == 404 and profile_id.encode() not in exchange.body
