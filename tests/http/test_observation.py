"""The framework-neutral core (:mod:`obs.http.observation`): the access line's keys and redaction."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import structlog
from prometheus_client import CollectorRegistry

from obs import configure_logging
from obs.http.access_line import ACCESS_KEYS
from obs.http.observation import RequestObservation
from obs.http.observer import HttpObserver
from obs.logs.redaction import MASK


def _every_field(observer: HttpObserver) -> Any:
    """A finished 500 with every optional field of the access line set."""
    observation = RequestObservation(
        observer, "POST", "/items/1", b"rid-1", b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01"
    )
    observation.status = 500
    observation.route = "/items/{item_id}"
    observation.query = "token=abc&page=2"
    observation.client = "127.0.0.1:5000"
    observation.user_agent = "test/1.0"
    observation.profile_path = "/tmp/profile.html"
    try:
        raise ValueError("boom")
    except ValueError as exc:
        observation.fail(exc)
    return observation


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_the_access_line_has_only_keys_obs_vouches_for(
    registry: CollectorRegistry, monkeypatch: pytest.MonkeyPatch, log_format: str
) -> None:
    stream = io.StringIO()
    configure_logging(service_name="svc", log_format=log_format, stream=stream, registry=registry)
    observer = HttpObserver(registry=registry)
    seen: list[dict[str, Any]] = []
    assert observer.access_log is not None
    emitter = observer.access_log._emitter
    real_emit = emitter.emit
    monkeypatch.setattr(
        emitter, "emit", lambda m, lv, d: (seen.append(dict(d)), real_emit(m, lv, d))
    )
    observation = _every_field(observer)
    observation.settle()
    observation.unbind()
    (fields,) = seen
    assert {"query", "client_addr", "user_agent", "trace_id", "profile", "error_type",
            "exc_info", "request_id"} <= fields.keys() <= ACCESS_KEYS  # fmt: skip
    assert "abc" not in stream.getvalue() and "token=" in stream.getvalue()


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_secrets_bound_in_the_context_are_masked_in_the_access_line(
    registry: CollectorRegistry, log_format: str
) -> None:
    stream = io.StringIO()
    configure_logging(service_name="svc", log_format=log_format, stream=stream, registry=registry)
    observer = HttpObserver(registry=registry)
    structlog.contextvars.bind_contextvars(api_key="sk-live-123", tenant="t1")
    observation = RequestObservation(observer, "GET", "/", None, None)
    observation.status = 200
    observation.settle()
    observation.unbind()
    output = stream.getvalue()
    assert "sk-live-123" not in output and MASK in output and "t1" in output
    if log_format == "json":
        line = json.loads(output)
        assert line["api_key"] == MASK and line["tenant"] == "t1" and line["event"] == "request"


@pytest.mark.parametrize(
    ("path", "written"), [("/items/1", True), ("/static/app.js", False), ("/health", False)]
)
def test_an_exception_is_marked_reported_only_when_its_access_line_was_written(
    registry: CollectorRegistry, path: str, written: bool
) -> None:
    from obs.logs.pipeline import REPORTED_ATTR

    stream = io.StringIO()
    configure_logging(service_name="svc", log_format="json", stream=stream, registry=registry)
    observer = HttpObserver(registry=registry, exclude_paths=["/static/*", "/health"])
    observation = RequestObservation(observer, "GET", path, b"rid-9", None)
    error = ValueError("boom")
    observation.fail(error)
    observation.settle()
    observation.unbind()
    # Excluded (exactly or by prefix): the server's own line must still show the traceback.
    assert hasattr(error, REPORTED_ATTR) is written
    assert ('"request_id":"rid-9"' in stream.getvalue()) is written


def test_lines_logged_while_a_request_runs_carry_its_route_once_routed(
    registry: CollectorRegistry,
) -> None:
    stream = io.StringIO()
    configure_logging(service_name="svc", log_format="json", stream=stream, registry=registry)
    log = structlog.get_logger("app")
    observer = HttpObserver(registry=registry, max_routes=1)
    environ: dict[str, Any] = {}

    def route_of(source: dict[str, Any], root: str) -> str | None:
        if source.get("fail"):
            raise RuntimeError("a router's own bug")
        template = source.get("obs.route")
        return None if template is None else root + template

    observation = RequestObservation(observer, "GET", "/items/1", b"rid-1")
    observation.route_source = (route_of, environ, "/api")
    log.info("before routing")
    environ["fail"] = True
    log.info("while the getter fails")  # never raises into the caller
    del environ["fail"]
    environ["obs.route"] = "/items/{item_id}"
    log.info("routed")
    log.info("own route", http_route="/mine")
    observation.status = 200
    observation.settle()
    log.info("after the response")
    observation.unbind()
    log.info("outside")
    other = RequestObservation(observer, "GET", "/other", b"rid-2")
    other.route_source = (route_of, {"obs.route": "/other"}, "")
    log.info("over the route limit")
    other.unbind()

    lines = {r["event"]: r for r in map(json.loads, stream.getvalue().splitlines())}
    assert "http_route" not in lines["before routing"]
    assert "http_route" not in lines["while the getter fails"]
    assert lines["routed"]["http_route"] == "/api/items/{item_id}"
    assert lines["own route"]["http_route"] == "/mine"
    assert lines["after the response"]["http_route"] == "/api/items/{item_id}"
    assert lines["request"]["http_route"] == "/api/items/{item_id}"  # the access line
    assert "http_route" not in lines["outside"] and "request_id" not in lines["outside"]
    # The metric's bounded label, as on the request's access line and metrics.
    assert lines["over the route limit"]["http_route"] == observer.route_label("/other") != "/other"
