"""Every detail of gunicorn that obs relies on without gunicorn documenting it, in one place.

gunicorn hands a WSGI app the ``start_response`` method of its own response object, whose
``force_close()`` makes the response say ``Connection: close`` and the worker close the
connection after it. obs calls it before answering the 500 of an app that raised: the worker
closes that connection whatever the response says (an app may not send ``Connection`` itself,
PEP 3333), and a keep-alive client told nothing reuses it and gets a reset. gunicorn is not
imported here: the object is recognised by its module. :data:`PRIVATE_NAMES` lists what is
relied on, so that ``tests/test_gunicorn_compat.py`` fails with the name and the installed
version when a release moves it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: ``(dotted name, what obs uses it for)`` of every undocumented name relied on below.
PRIVATE_NAMES: tuple[tuple[str, str], ...] = (
    ("gunicorn.http.wsgi.Response.start_response", "the start_response a worker passes"),
    ("gunicorn.http.wsgi.Response.force_close", "closing the connection of an error answer"),
)

_RESPONSE_MODULE = "gunicorn.http.wsgi"


def connection_closer(start_response: Callable[..., Any]) -> Callable[[], None] | None:
    """The call that makes gunicorn close the connection after this response, when
    *start_response* is a gunicorn worker's own; ``None`` for any other server (or a
    middleware between obs and gunicorn)."""
    owner = getattr(start_response, "__self__", None)
    if owner is None or type(owner).__module__ != _RESPONSE_MODULE:
        return None
    close = getattr(owner, "force_close", None)
    return close if callable(close) else None


def installed_version() -> str:
    """The installed gunicorn version (for messages)."""
    from importlib.metadata import version

    return version("gunicorn")
