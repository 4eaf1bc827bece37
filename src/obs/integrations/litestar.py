"""Litestar: a plugin that makes handler exceptions visible to :mod:`obs.asgi`.

    app = ObservabilityMiddleware(
        Litestar([...], plugins=[ObservabilityPlugin()], logging_config=None)
    )

Litestar catches a handler's exception itself and answers 500, so the middleware outside it
sees a 500 without an exception: no exception class as ``error_type``, no
``http_server_exceptions_total``, no traceback. The plugin adds an ``after_exception`` hook
that puts the exception in the scope (:data:`obs.asgi.EXCEPTION_KEY`), where the middleware
finds it when the response is a 5xx, as it does with Starlette's re-raised exceptions.
Litestar's own ``HTTPException`` family (``NotAuthorizedException`` from a guard, a 404) is
an answer, not a failure, and is left out.
"""

from __future__ import annotations

from typing import Any

from litestar.config.app import AppConfig
from litestar.exceptions import HTTPException
from litestar.plugins import InitPluginProtocol

from obs.asgi import EXCEPTION_KEY

__all__ = ["ObservabilityPlugin"]


async def note_exception(exc: Exception, scope: Any) -> None:
    """Litestar ``after_exception`` hook: keep a handler's exception for :mod:`obs.asgi`."""
    if not isinstance(exc, HTTPException):
        scope[EXCEPTION_KEY] = exc


class ObservabilityPlugin(InitPluginProtocol):
    """Adds :func:`note_exception` to the app's ``after_exception`` hooks."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        if note_exception not in app_config.after_exception:
            app_config.after_exception.append(note_exception)
        return app_config
