"""Falcon: a middleware component that tells obs the matched route template.

    app = falcon.App(middleware=[RouteTemplates()])       # or falcon.asgi.App(...)
    application = obs.wsgi.ObservabilityMiddleware(app)   # obs.asgi's for falcon.asgi.App

Falcon keeps the matched template on its request object only (``req.uri_template``), which
is gone when the app returns. The component copies it, once routing is done
(``process_resource``), to where the middleware reads routes: ``req.env`` under WSGI,
``req.scope`` under ASGI (:data:`obs.wsgi.ROUTE_KEY`, :data:`obs.asgi.ROUTE_KEY`). Falcon
calls it for every request it routed, including a method the resource does not answer (405);
a path no route matched stays ``_unmatched``. One class serves both: Falcon's ASGI app calls
``process_resource_async``. Falcon is not imported.
"""

from __future__ import annotations

from typing import Any

from obs.asgi import ROUTE_KEY as ASGI_ROUTE_KEY
from obs.wsgi import ROUTE_KEY as WSGI_ROUTE_KEY

__all__ = ["RouteTemplates"]


class RouteTemplates:
    """Falcon middleware: the matched ``req.uri_template`` becomes the request's ``http_route``
    (``/users/{user_id}``); add it to ``falcon.App(middleware=[...])`` or ``falcon.asgi.App``."""

    def process_resource(self, req: Any, resp: Any, resource: Any, params: Any) -> None:
        template = req.uri_template
        if template is not None:
            req.env[WSGI_ROUTE_KEY] = template

    async def process_resource_async(self, req: Any, resp: Any, resource: Any, params: Any) -> None:
        template = req.uri_template
        if template is not None:
            req.scope[ASGI_ROUTE_KEY] = template
