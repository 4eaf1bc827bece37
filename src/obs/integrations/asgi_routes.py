"""Route templates of ASGI frameworks, read from the scope after routing.

Starlette and FastAPI put the matched route in ``scope["route"]``, Litestar its template in
``scope["path_template"]`` (and its handler in ``scope["route_handler"]``). Duck-typed: no
framework is imported.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]


def route_template(scope: Scope, root_path: str) -> str | None:
    """The matched route template of a routed scope, or ``None`` when nothing matched.

    *root_path* is the scope's ``root_path`` as the middleware received it, so prefixes added
    by mounted sub-applications are kept and a proxy's prefix is not.
    """
    route = scope.get("route")
    if route is None:
        template = scope.get("path_template")  # Litestar
        if isinstance(template, str) and template:
            return template
        handler = scope.get("route_handler")  # Litestar mounts leave the template empty
        if handler is not None:
            paths = getattr(handler, "paths", None)
            return min(paths) if paths else None
        endpoint, router = scope.get("endpoint"), scope.get("router")
        if endpoint is None or router is None:
            return None
        # FastAPI sets ``route`` for its own routes only; find a plain route by its endpoint.
        route = _route_of_endpoint(router, endpoint)
        if route is None:
            return None
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return None
    current_root = scope.get("root_path", "")
    prefix = "" if current_root == root_path else str(current_root)[len(root_path) :]
    if hasattr(route, "routes"):  # a Mount that is itself the endpoint (e.g. static files)
        return prefix + "/{path}"
    return prefix + path


def _route_of_endpoint(router: Any, endpoint: Any) -> Any:
    for route in getattr(router, "routes", ()):
        if getattr(route, "endpoint", None) is endpoint or getattr(route, "app", None) is endpoint:
            return route
    return None
