"""Pyramid: ``config.include("obs.integrations.pyramid")`` tells obs the matched route pattern.

    with Configurator() as config:
        config.include("obs.integrations.pyramid")
        config.add_route("user", "/users/{user_id}")
        ...
        application = obs.wsgi.ObservabilityMiddleware(config.make_wsgi_app())

Pyramid keeps the matched route on its request object only (``request.matched_route``), which
is gone when the app returns. :func:`includeme` subscribes to ``ContextFound``, which Pyramid
sends once per request right after routing, and copies the route's ``pattern`` (prefixes of
``config.include(..., route_prefix="/api")`` included) to the environ
(:data:`obs.wsgi.ROUTE_KEY`). A request no route matched stays ``_unmatched``.
"""

from __future__ import annotations

from typing import Any

from obs.wsgi import ROUTE_KEY

__all__ = ["includeme"]


def note_route(event: Any) -> None:
    """``ContextFound`` subscriber: the matched route's pattern becomes the request's route."""
    request = event.request
    route = getattr(request, "matched_route", None)
    if route is not None:
        pattern = route.pattern
        # Pyramid accepts patterns without the leading slash ("users/{id}") and matches them
        # as if they had one.
        request.environ[ROUTE_KEY] = pattern if pattern.startswith("/") else "/" + pattern


def includeme(config: Any) -> None:
    """Pyramid's include hook: ``config.include("obs.integrations.pyramid")``."""
    from pyramid.events import ContextFound

    config.add_subscriber(note_route, ContextFound)
