"""OpenTelemetry beside obs: the trace id of the span in progress, when there is one.

When OpenTelemetry's instrumentation (its ASGI/WSGI middleware, or a server span of your own)
runs around obs, the request's ``trace_id`` in the access line, the log context and the
exemplar is that span's, so an exemplar opens the very trace in Tempo or Jaeger. Only
``opentelemetry-api`` is used (its public ``trace`` module), and only if it is installed:
without it nothing is imported and requests pay nothing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable


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
    get_current_span = trace.get_current_span

    def current_trace_id() -> str | None:
        span = get_current_span()
        if not span.is_recording():  # the invalid span, or one sampled out
            return None
        trace_id = span.get_span_context().trace_id
        return f"{trace_id:032x}" if trace_id else None

    return current_trace_id
