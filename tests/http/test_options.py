"""Arguments checked at construction: each wrong one is one clear error naming the argument,
the value and what it accepts, before any request (table-driven)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from flask import Flask
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

import obs.asgi
import obs.wsgi
from obs.config import Settings
from obs.exceptions import ConfigError
from obs.http.ids import request_id_reader
from obs.http.observation import RequestObservation
from obs.http.observer import HttpObserver
from obs.http.options import OTHER_LABEL_VALUE, from_header
from obs.integrations.flask import instrument
from tests.conftest import active, count


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    start_response("200 OK", [])
    return [b"ok"]


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    return None


def asgi(**kwargs: Any) -> Any:
    return obs.asgi.ObservabilityMiddleware(asgi_app, registry=CollectorRegistry(), **kwargs)


def wsgi(**kwargs: Any) -> Any:
    return obs.wsgi.ObservabilityMiddleware(wsgi_app, registry=CollectorRegistry(), **kwargs)


CASES: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    ("max_routes as read from os.environ", lambda: asgi(max_routes="10"), TypeError,
     r"max_routes='10' \(str\): give a whole number of at least 1 \(convert it: max_routes=int"),
    ("max_routes zero", lambda: wsgi(max_routes=0), ConfigError, r"max_routes=0: give a whole"),
    ("max_label_sets float", lambda: asgi(max_label_sets=2.5), TypeError, r"max_label_sets=2.5 \(float\)"),
    ("access_log as a word", lambda: asgi(access_log="no"), TypeError,
     r"access_log='no' \(str\): give True, False or None"),
    ("request_ids as a number", lambda: wsgi(request_ids=1), TypeError, r"request_ids=1 \(int\): give True or False"),
    ("record_body_sizes as a word", lambda: asgi(record_body_sizes="yes"), TypeError, r"record_body_sizes='yes'"),
    ("registry of the wrong kind", lambda: obs.asgi.ObservabilityMiddleware(asgi_app, registry={}), TypeError,
     r"registry=\{\} \(dict\): give a prometheus_client.CollectorRegistry"),
    ("settings as a dict", lambda: asgi(settings={"access_log": False}), TypeError, r"settings=.*give an obs.Settings"),
    ("profiler of the wrong kind", lambda: asgi(profiler="token"), TypeError, r"profiler='token'"),
    ("app None under ASGI", lambda: obs.asgi.ObservabilityMiddleware(None), TypeError,  # type: ignore[arg-type]
     r"ObservabilityMiddleware\(app=None\): give the ASGI application"),
    ("app None under WSGI", lambda: obs.wsgi.ObservabilityMiddleware(None), TypeError,  # type: ignore[arg-type]
     r"ObservabilityMiddleware\(app=None\): give the WSGI application"),
    ("WSGI function under the ASGI middleware", lambda: obs.asgi.ObservabilityMiddleware(wsgi_app), TypeError,  # type: ignore[arg-type]
     r"this is a WSGI application .* use obs.wsgi.ObservabilityMiddleware"),
    ("Flask app under the ASGI middleware", lambda: obs.asgi.ObservabilityMiddleware(Flask("x")), TypeError,  # type: ignore[arg-type]
     r"app=<flask.app.Flask>\): this is a WSGI application"),
    ("ASGI function under the WSGI middleware", lambda: obs.wsgi.ObservabilityMiddleware(asgi_app), TypeError,  # type: ignore[arg-type]
     r"this is an ASGI application .* use obs.asgi.ObservabilityMiddleware"),
    ("Starlette app under the WSGI middleware", lambda: obs.wsgi.ObservabilityMiddleware(Starlette()), TypeError,  # type: ignore[arg-type]
     r"app=<starlette.applications.Starlette>\): this is an ASGI application"),
    ("FastAPI app to Flask's instrument", lambda: instrument(FastAPI()), TypeError,
     r"instrument\(app=<fastapi.applications.FastAPI>\): not a Flask app; for an ASGI app use obs.asgi"),
    ("None to Flask's instrument", lambda: instrument(None), TypeError, r"instrument\(app=<builtins.NoneType>\): not a Flask app; give the Flask"),
    ("metrics_path without slash", lambda: instrument(Flask("y"), metrics_path="metrics"), ConfigError,
     r"metrics_path: 'metrics' is not a path; paths start with '/'"),
    ("route_getter not callable", lambda: asgi(route_getter="/x"), TypeError, r"route_getter='/x'"),
    ("one path as a string", lambda: asgi(metrics_exclude_paths="/metrics"), TypeError,
     r"metrics_exclude_paths='/metrics': give a list of paths"),
    ("path without slash", lambda: wsgi(exclude_paths=["health"]), ConfigError,
     r"exclude_paths: 'health' is not a path; paths start with '/' \(e.g. '/health'"),
    ("star inside a path", lambda: asgi(metrics_exclude_paths=["/a/*/b"]), ConfigError, r"only a trailing '/\*'"),
    ("buckets unsorted", lambda: asgi(duration_buckets=[1, 0.5]), ConfigError, r"not strictly increasing"),
    ("buckets as text", lambda: asgi(duration_buckets="0.1,1"), TypeError, r"duration_buckets='0.1,1': give a list"),
    ("negative bucket", lambda: asgi(duration_buckets=[-1, 1]), ConfigError, r"-1.0 is not a positive number"),
    ("header with a space", lambda: asgi(request_id_header="X Id"), ConfigError,
     r"request_id_header='X Id' is not an HTTP header name"),
    ("generator not callable", lambda: asgi(request_id_generator="uuid4"), TypeError, r"request_id_generator='uuid4'"),
    ("validator not callable", lambda: wsgi(request_id_validator=True), TypeError, r"request_id_validator=True"),
    ("unbounded extra label", lambda: asgi(extra_labels={"tenant": "X-Tenant"}), TypeError,
     r"extra_labels\['tenant'\]='X-Tenant': give from_header"),
    ("extra label taking a catalogue label", lambda: asgi(extra_labels={"http_route": from_header("X-R", ["a"])}),
     ConfigError, r"'http_route' is already a label"),
    ("extra label name invalid", lambda: asgi(extra_labels={"2x": from_header("X-R", ["a"])}), ConfigError,
     r"'2x' is not a Prometheus label name"),
    ("allow-list as one string", lambda: from_header("X-Tenant", "acme"), TypeError, r"from_header\(allowed='acme'\)"),
    ("empty allow-list", lambda: from_header("X-Tenant", []), ConfigError, r"give at least one non-empty"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "build", "error", "message"), CASES, ids=[c[0] for c in CASES])
def test_wrong_argument_is_one_clear_error_at_construction(
    what: str, build: Callable[[], Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        build()
    text = str(info.value)
    assert re.search(message, text), text
    assert "\n" not in text


def test_right_arguments_of_every_kind_are_accepted() -> None:
    obs.asgi.ObservabilityMiddleware(Starlette(), registry=CollectorRegistry(), max_routes=10)
    obs.asgi.ObservabilityMiddleware(FastAPI(), registry=CollectorRegistry(), access_log=None)
    obs.wsgi.ObservabilityMiddleware(Flask("z").wsgi_app, registry=CollectorRegistry())
    obs.wsgi.ObservabilityMiddleware(Flask("w"), registry=CollectorRegistry())
    instrument(Flask("v"), registry=CollectorRegistry(), metrics_path=None)


def test_two_middlewares_disagreeing_on_buckets_in_one_registry() -> None:
    registry = CollectorRegistry()
    obs.asgi.ObservabilityMiddleware(asgi_app, registry=registry, duration_buckets=[0.1, 1])
    obs.asgi.ObservabilityMiddleware(asgi_app, registry=registry, duration_buckets=[0.1, 1])
    with pytest.raises(ConfigError, match="already registered in this registry with buckets"):
        obs.asgi.ObservabilityMiddleware(asgi_app, registry=registry, duration_buckets=[2])


def test_excluded_path_is_neither_counted_nor_gauged(registry: CollectorRegistry) -> None:
    observer = HttpObserver(registry=registry, settings=Settings.from_env({}), access_log=False)
    scrape = RequestObservation(observer, "GET", "/metrics")
    assert active(registry) == 0.0  # the scrape in flight is not in the gauge
    scrape.status = 200
    scrape.settle()
    page = RequestObservation(observer, "GET", "/page")
    assert active(registry) == 1.0
    page.status = 200
    page.settle()
    assert count(registry) == 1.0 and active(registry) == 0.0


def test_validator_and_generator_never_fail_a_request(registry: CollectorRegistry) -> None:
    def broken_validator(value: str) -> bool:
        raise RuntimeError("validator bug")

    read = request_id_reader(lambda: "bad id\r\n", broken_validator)
    made = read(
        b"incoming-1"
    )  # the validator raised: a new id, from obs (the generator's is unsafe)
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert request_id_reader(None, lambda v: v == "ok")(b"ok") == "ok"
    assert request_id_reader(None, lambda v: True)(b"has space") != "has space"  # obs's rule first


def test_label_values_outside_the_allow_list_become_one_value() -> None:
    label = from_header("X-Plan", ["free", "pro"])
    assert [label.value(v) for v in ("free", "pro", "gold", None)] == [
        "free", "pro", OTHER_LABEL_VALUE, OTHER_LABEL_VALUE,
    ]  # fmt: skip
