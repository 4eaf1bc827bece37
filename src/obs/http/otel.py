"""OpenTelemetry beside obs: the trace id of the span in progress, when there is one.

When OpenTelemetry's instrumentation (its ASGI/WSGI middleware, or a server span of your own)
runs around obs, the request's ``trace_id`` in the access line, the log context and the
exemplar is that span's, so an exemplar opens the very trace in Tempo or Jaeger. Only
``opentelemetry-api`` is used, and only if it is installed: without it nothing is imported and
requests pay nothing.

With it, most services have no span at all (FastAPI depends on the api), so the check must
be cheap: the public ``trace.get_current_span()`` is four Python calls to say "no span"; here the
current context is read straight from the api's context variable, two C calls per request
(``ContextVar.get`` and ``Context.get``, made by the observation itself: :func:`span_lookup`).
Under callgrind reading the variable saved about 760 instructions per request against the public
call (86,962 over bare Starlette against 87,723; ``python -m bench.instructions --requests 300
--variants "obs default"``). The private names it takes are :data:`PRIVATE_NAMES` (checked by a
test); if a release renames them, the public path is used.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from typing import Any

#: opentelemetry-api internals read here, and why (tests/http/test_otel.py checks they exist).
PRIVATE_NAMES: tuple[tuple[str, str], ...] = (
    ("opentelemetry.context._RUNTIME_CONTEXT._current_context", "the current context, in C"),
    ("opentelemetry.trace.propagation._SPAN_KEY", "the current span's key in that context"),
)


#: The key of the span in the context the public fallback of :func:`span_lookup` returns.
_PUBLIC_SPAN_KEY = "span"
#: How the span in progress is found: ``get_context().get(key)`` (see :func:`span_lookup`).
SpanLookup = tuple[Callable[[], Mapping[str, Any]], str]


def span_lookup() -> SpanLookup | None:
    """How to find the span in the current context: ``(get_context, key)``, the span being
    ``get_context().get(key)``, or ``None`` when ``opentelemetry-api`` is not installed
    (decided once). Two C calls, done by the request's observation itself: a function of ours
    per request would cost a Python call more (bench/instructions.py: about 600 instructions).
    """
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
        return fast
    get_current_span = trace.get_current_span

    def current_context_public() -> Mapping[str, Any]:
        return {_PUBLIC_SPAN_KEY: get_current_span()}

    return current_context_public, _PUBLIC_SPAN_KEY


def trace_id_of(span: Any) -> str | None:
    """The trace id (32 hex digits) of *span* if it is recording (not invalid, not sampled
    out), else ``None``."""
    if not span.is_recording():
        return None
    trace_id = span.get_span_context().trace_id
    return f"{trace_id:032x}" if trace_id else None


def _fast_span_lookup() -> SpanLookup | None:
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
