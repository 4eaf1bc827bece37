"""Route templates of ASGI frameworks, read from the scope after routing.

Starlette and FastAPI put the matched route in ``scope["route"]`` and their outermost router in
``scope["router"]``; Litestar puts its template in ``scope["path_template"]`` (and its handler
in ``scope["route_handler"]``). Duck-typed: no framework is imported.

A request Litestar answered 405 (a path it knows, a method it does not) carries no template in
the scope: only then, when nothing else matched, its router is asked for the path's template
(:func:`obs.integrations._compat.litestar_method_not_allowed_template`).

A template is always built from the framework's own route data, never from the request's path:
a ``Mount("/t/{tenant}")`` contributes ``/t/{tenant}``, not the tenant's name.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from obs.integrations._compat import (
    fastapi_effective_path,
    fastapi_included_match,
    is_fastapi_included_router,
    litestar_method_not_allowed_template,
)

Scope = MutableMapping[str, Any]

#: Scope key where integrations and custom routers put the matched route template; it wins
#: over what the scope says otherwise (``obs.django`` under Django's ASGI handler sets it).
ROUTE_KEY = "obs.route"
#: The scope key FastAPI keeps its routing state under (see integrations._compat).
_FASTAPI_KEY = "fastapi"
#: The scope key Litestar keeps its app under (set before routing, so a 405 has it).
_LITESTAR_APP_KEY = "litestar_app"
#: Deepest chain of mounts and hosts followed; deeper layouts are reported as unmatched.
MAX_MOUNT_DEPTH = 16
#: Starlette's ``Match`` enum values (``NONE``, ``PARTIAL``, ``FULL``), compared by value so
#: Starlette need not be imported.
_FULL, _PARTIAL = 2, 1


def route_template(scope: Scope, root_path: str) -> str | None:
    """The matched route template of a routed scope, or ``None`` when nothing matched.

    *root_path* is the scope's ``root_path`` as the middleware received it, so prefixes added
    by mounted sub-applications are kept (as their templates) and a proxy's prefix is not.
    """
    given = scope.get(ROUTE_KEY)
    if given is None and ("path_template" in scope or "route_handler" in scope):
        given = _litestar_template(scope)
    if given is not None:
        return mounted_template(scope, root_path, str(given))
    route = scope.get("route")
    # Looked up here first: the call costs more than the key test for every non-FastAPI app.
    local = fastapi_effective_path(scope) if _FASTAPI_KEY in scope else None
    # _is_mount(route), inlined: a call fewer per request (bench/instructions.py: about 500
    # instructions).
    if scope.get("root_path", "") == root_path and not (
        route is not None and hasattr(route, "routes") and not hasattr(route, "host")
    ):
        # No mount in between: the innermost app's template is the whole template.
        if local is not None:
            return local
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
    found = _walk(scope, root_path, local)
    if found is None and _LITESTAR_APP_KEY in scope:  # nothing matched: maybe a Litestar 405
        template = litestar_method_not_allowed_template(scope)
        if template is not None:
            return mounted_template(scope, root_path, template)
    return found


def mounted_template(scope: Scope, root_path: str, template: str) -> str:
    """*template*, found by an app that routes itself (Litestar, Django, a custom router) and so
    relative to it, with the templates of the Starlette or FastAPI mounts it sits under first
    (``Mount("/dj", app=django_asgi_app)``: ``/dj/polls/<int:qid>/``)."""
    if scope.get("root_path", "") != root_path and "router" in scope:
        return _walk(scope, root_path, None, template) or template
    return template


def _litestar_template(scope: Scope) -> str | None:
    template = scope.get("path_template")
    if isinstance(template, str) and template:
        return template
    handler = scope.get("route_handler")  # Litestar mounts leave the template empty
    if handler is not None:
        paths = getattr(handler, "paths", None)
        return min(paths) if paths else None
    return None


def _is_mount(route: Any) -> bool:
    return route is not None and hasattr(route, "routes") and not hasattr(route, "host")


def _walk(
    scope: Scope, root_path: str, local: str | None, mounted: str | None = None
) -> str | None:
    """Route the request again through the framework's own ``matches()``, from the outermost
    router down through each ``Mount``, ``Host`` and FastAPI included router, adding each
    mount's template; *mounted* is the template an app mounted as a whole (Litestar, Django)
    found itself.

    Only taken when a mount (or an older Starlette that names no route) is involved, so the
    common request pays nothing for it.
    """
    router = scope.get("router")
    routes = getattr(router, "routes", None)
    if routes is None:
        return None
    path, mounted_at = scope.get("path", ""), scope.get("root_path", "")
    if not path.startswith(mounted_at):  # an app that took its mount's prefix off (Litestar)
        path = mounted_at + path
    probe: dict[str, Any] = {**scope, "path": path, "root_path": root_path, "path_params": {}}
    if isinstance(probe.get(_FASTAPI_KEY), dict):  # FastAPI writes its state there while matching
        probe[_FASTAPI_KEY] = dict(probe[_FASTAPI_KEY])
    prefix = ""
    for _ in range(MAX_MOUNT_DEPTH):
        chosen, child = _first_match(routes, probe)
        template = None
        if is_fastapi_included_router(chosen):
            # FastAPI >= 0.116 includes a router by reference: what it selects inside carries
            # the inclusions' prefixes (a Mount's in its path, a route's in its template).
            chosen, child, template = fastapi_included_match(chosen, probe)
        if chosen is None:
            # Below the last mount Starlette can route: the app mounted there routes itself.
            return prefix + mounted if mounted is not None and prefix else None
        if hasattr(chosen, "host"):  # Host: routes by the Host header, adds nothing to the path
            probe.update(child)
            routes = chosen.routes
            continue
        if _is_mount(chosen):
            prefix += str(getattr(chosen, "path", ""))
            probe.update(child)
            inner = chosen.routes
            if not inner:  # the mount is the endpoint (static files, a plain ASGI app)
                return prefix + (mounted or "/{path}")
            routes = inner
            continue
        if mounted is not None:  # a whole app's own template, reached without its mount
            return None
        if template is not None:
            return prefix + template
        if local is not None:
            return prefix + local
        path = getattr(chosen, "path", None)
        return prefix + path if isinstance(path, str) else None
    return None


def _first_match(routes: Any, probe: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The route a Starlette router picks: the first full match, else the first partial one
    (a route that matched the path but not the method)."""
    partial: tuple[Any, dict[str, Any]] | None = None
    for route in routes:
        matches = getattr(route, "matches", None)
        if matches is None:
            continue
        match, child = matches(probe)
        value = getattr(match, "value", match)
        if value == _FULL:
            return route, child
        if value == _PARTIAL and partial is None:
            partial = (route, child)
    return partial if partial is not None else (None, {})
