"""OpenTelemetry beside obs: a recording span's trace id is the request's ``trace_id`` (access
line, log context, exemplar); without a span, or without the package, obs does as before."""

from __future__ import annotations

import io

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from prometheus_client import CollectorRegistry

from obs.http.observation import RequestObservation
from obs.http.observer import HttpObserver
from obs.prometheus.render import render_openmetrics
from tests.conftest import access, run_python

TRACEPARENT = b"00-" + b"a" * 32 + b"-" + b"b" * 16 + b"-01"


def finish(observer: HttpObserver, traceparent: bytes | None = None) -> RequestObservation:
    observation = RequestObservation(observer, "GET", "/x", b"rid-1", traceparent)
    observation.status = 200
    observation.settle()
    observation.unbind()
    return observation


def test_the_recording_span_gives_the_trace_id(
    registry: CollectorRegistry, log: io.StringIO
) -> None:
    observer = HttpObserver(registry=registry)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("GET /x") as span:
        observation = finish(observer, TRACEPARENT)
    expected = f"{span.get_span_context().trace_id:032x}"
    assert observation.trace_id == expected  # the span's, not the traceparent's
    assert access(log)[-1]["trace_id"] == expected
    assert f'trace_id="{expected}"' in render_openmetrics(registry).decode()


def test_no_span_or_a_span_sampled_out_leaves_the_traceparent(registry: CollectorRegistry) -> None:
    observer = HttpObserver(registry=registry, access_log=False)
    assert finish(observer, TRACEPARENT).trace_id == "a" * 32
    tracer = TracerProvider(sampler=ALWAYS_OFF).get_tracer("test")
    with tracer.start_as_current_span("GET /x"):
        assert finish(observer, TRACEPARENT).trace_id == "a" * 32
        assert finish(observer).trace_id is None


def test_without_opentelemetry_nothing_is_imported() -> None:
    code = (
        "import sys; sys.modules['opentelemetry'] = None\n"  # as if not installed
        "from prometheus_client import CollectorRegistry\n"
        "from obs.http.observer import HttpObserver\n"
        "from obs.http.observation import RequestObservation\n"
        "o = HttpObserver(registry=CollectorRegistry(), access_log=False)\n"
        "assert o.span_lookup is None\n"
        "RequestObservation(o, 'GET', '/').settle()\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['opentelemetry']"  # only the blocker itself
    unimported = run_python(
        "import sys\nfrom obs.http.otel import span_lookup\n"
        "import obs.asgi\nprint(any(m.startswith('opentelemetry.') for m in sys.modules))"
    )
    assert unimported.stdout.strip() == "False", unimported.stderr


def test_the_opentelemetry_internals_obs_reads_still_exist() -> None:
    from importlib.metadata import version

    from obs.http.otel import PRIVATE_NAMES
    from tests.conftest import assert_private_names_exist

    assert_private_names_exist(PRIVATE_NAMES, "opentelemetry-api", version("opentelemetry-api"))


def test_the_public_path_when_the_internals_are_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    import obs.http.observer
    import obs.http.otel

    monkeypatch.setattr(obs.http.otel, "_fast_span_lookup", lambda: None)
    lookup = obs.http.otel.span_lookup()
    assert lookup is not None and lookup[0].__name__ == "current_context_public"
    get_context, key = lookup
    assert not get_context()[key].is_recording()  # the api's invalid span: no trace id
    assert obs.http.otel.trace_id_of(get_context()[key]) is None
    with TracerProvider().get_tracer("t").start_as_current_span("s") as span:
        found = obs.http.otel.trace_id_of(get_context()[key])
        assert found == f"{span.get_span_context().trace_id:032x}"
    # And through an observation, as a request reads it.
    monkeypatch.setattr(obs.http.observer, "span_lookup", lambda: lookup)
    observer = HttpObserver(registry=CollectorRegistry(), access_log=False)
    with TracerProvider().get_tracer("t").start_as_current_span("s") as span:
        assert finish(observer).trace_id == f"{span.get_span_context().trace_id:032x}"
