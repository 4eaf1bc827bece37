"""OpenTelemetry beside obs: the trace id of the span in progress, when there is one.

When OpenTelemetry's instrumentation (its ASGI/WSGI middleware, or a server span of your own)
runs around obs, the request's ``trace_id`` in the access line, the log context and the
exemplar is that span's, so an exemplar opens the very trace in Tempo or Jaeger. Only
``opentelemetry-api`` is used, and only if it is installed: without it nothing is imported and
requests pay nothing.

With it, most services have no span at all (FastAPI depends on the api), so the check must
be cheap: the public ``trace.get_current_span()`` is four Python calls to say "no span"; here the
current context is read straight from the api's context variable, which adds three calls per
request in all (this function, ``ContextVar.get`` and ``Context.get``: ``sys.setprofile`` count
on bench.apps' "obs default"). Under callgrind the switch saved about 760 instructions per
request (86,962 over bare Starlette against 87,723 with the public call; ``python -m
bench.instructions --requests 300 --variants "obs default"``). The private names it takes are
:data:`PRIVATE_NAMES` (checked by a test); if a release renames them, the public path is used.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

#: opentelemetry-api internals read here, and why (tests/http/test_otel.py checks they exist).
PRIVATE_NAMES: tuple[tuple[str, str], ...] = (
    ("opentelemetry.context._RUNTIME_CONTEXT._current_context", "the current context, in C"),
    ("opentelemetry.trace.propagation._SPAN_KEY", "the current span's key in that context"),
)


def current_trace_id_reader() -> Callable[[], str | None] | None:
    """A function returning the trace id (32 hex digits) of the recording span in the current
    context, or ``None`` when ``opentelemetry-api`` is not installed (decided once)."""
    try:
        if importlib.util.find_spec("opentelemetry") is None:
            return None
    except (ImportError, ValueError):
        return None
    try:
        from opentelemetry import trace
    except ImportError:  # a namespace package without the api
        return None
    fast = _fast_span_lookup()
    if fast is not None:
        get_context, span_key = fast

        def current_trace_id() -> str | None:
            span = get_context().get(span_key)
            if span is None or not span.is_recording():  # none, invalid, or sampled out
                return None
            trace_id = span.get_span_context().trace_id
            return f"{trace_id:032x}" if trace_id else None

        return current_trace_id

    get_current_span = trace.get_current_span

    def current_trace_id_public() -> str | None:
        span = get_current_span()
        if not span.is_recording():
            return None
        trace_id = span.get_span_context().trace_id
        return f"{trace_id:032x}" if trace_id else None

    return current_trace_id_public


def _fast_span_lookup() -> tuple[Callable[[], Any], str] | None:
    """The context variable's ``get`` and the span's key, if the api still has them."""
    try:
        from contextvars import ContextVar

        from opentelemetry import context
        from opentelemetry.trace.propagation import _SPAN_KEY

        variable = context._RUNTIME_CONTEXT._current_context  # type: ignore[attr-defined]
    except (ImportError, AttributeError):
        return None
    if not isinstance(variable, ContextVar) or not isinstance(_SPAN_KEY, str):
        return None
    return variable.get, _SPAN_KEY
