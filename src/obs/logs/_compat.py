"""Every private name of structlog that obs reads, in one place.

obs merges the request context into each line by reading structlog's own context variables
directly (a walk over every context variable costs more, per line, than the rest of the chain);
structlog keeps them in a private dict. :data:`PRIVATE_NAMES` lists what is read here, so that
``tests/logs/test_compat.py`` fails with the symbol and the installed version when a release
renames one. Without it, obs falls back to structlog's public ``merge_contextvars``.
"""

from __future__ import annotations

import contextvars
from typing import Any

import structlog

#: ``(dotted name, what obs uses it for)`` of every private name read below.
PRIVATE_NAMES: tuple[tuple[str, str], ...] = (
    ("structlog.contextvars._CONTEXT_VARS", "structlog's context variables, by prefixed key"),
)


def installed_version() -> str:
    """The installed structlog version (for messages; importlib.metadata is loaded only here)."""
    from importlib.metadata import version

    return version("structlog")


#: structlog's public prefix of its context variables' names (``structlog_request_id``).
KEY_PREFIX: str = structlog.contextvars.STRUCTLOG_KEY_PREFIX


def _context_vars() -> dict[str, contextvars.ContextVar[Any]] | None:
    found = getattr(structlog.contextvars, "_CONTEXT_VARS", None)
    return found if isinstance(found, dict) else None


#: structlog's registry of its context variables, or ``None`` where this version keeps none.
CONTEXT_VARS: dict[str, contextvars.ContextVar[Any]] | None = _context_vars()
