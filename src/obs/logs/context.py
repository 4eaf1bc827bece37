"""The request context bound for structlog: ``request_id`` and ``trace_id``, and the request
itself (:data:`REQUEST`), which tells log lines its route once the framework has routed it.

The middleware sets these two context variables directly (tens of nanoseconds) instead of going
through :func:`structlog.contextvars.bind_contextvars` on every request; they are the very
variables structlog's ``merge_contextvars`` reads, so every log line of the request carries them.
"""

from __future__ import annotations

import contextvars
from typing import Any, Protocol

import structlog

from obs.logs._compat import CONTEXT_VARS, KEY_PREFIX


def _structlog_var(key: str) -> contextvars.ContextVar[Any]:
    """Find (creating it if need be) the context variable structlog uses for *key*."""

    def find() -> contextvars.ContextVar[Any]:
        structlog.contextvars.bind_contextvars(**{key: None})
        for var in contextvars.copy_context():
            if var.name == KEY_PREFIX + key:
                return var
        raise RuntimeError(f"structlog keeps no context variable for {key!r}")  # pragma: no cover

    # Bound in a throwaway context so that nothing leaks into the caller's.
    return contextvars.Context().run(find)


REQUEST_ID: contextvars.ContextVar[Any] = _structlog_var("request_id")
TRACE_ID: contextvars.ContextVar[Any] = _structlog_var("trace_id")


class RoutedRequest(Protocol):
    """What a log line may ask of the request being handled."""

    def current_route(self) -> str | None:
        """The request's ``http_route`` label, ``None`` before routing; never raises."""


#: The request being handled, bound with its ids (not a structlog key: its lines read it through
#: :func:`obs.logs.processors.add_http_route`, which asks it for its route when they are written,
#: since an ASGI or WSGI middleware binds before the framework has routed the request).
REQUEST: contextvars.ContextVar[RoutedRequest | None] = contextvars.ContextVar(
    "obs_request", default=None
)


def current_request_id() -> str | None:
    """The id of the request being handled, or ``None`` outside a request."""
    value = REQUEST_ID.get(None)
    return value if isinstance(value, str) else None


def clear_bound_context() -> None:
    """Unbind every key bound with ``structlog.contextvars`` in the current context.

    What :func:`structlog.contextvars.clear_contextvars` does, touching only the variables that
    hold a value (a fresh request context usually has none, so this costs a few reads).
    """
    if CONTEXT_VARS is None:  # pragma: no cover - a structlog that keeps them elsewhere
        structlog.contextvars.clear_contextvars()
        return
    for var in tuple(CONTEXT_VARS.values()):  # one C call: safe against a concurrent bind
        if var.get() is not Ellipsis:
            var.set(Ellipsis)
