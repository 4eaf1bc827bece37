"""Every private detail of a web framework that obs reads, in one place.

FastAPI 0.116 and later include a router by reference (``_IncludedRouter``) instead of copying
its routes with the prefix applied, so ``scope["route"].path`` is the router-local path
(``/{user_id}`` for both ``/users/{user_id}`` and ``/admins/{user_id}``). The full template of
the matched route is then kept only in FastAPI's own scope entry, read here.

Litestar raises ``MethodNotAllowedException`` while routing, before it sets
``scope["path_template"]``, so a method not allowed on an existing path leaves no template in
the scope; obs asks the app's router (``asgi_router.handle_routing``, its cached routing
function) for the template of one of the methods the exception allows.
:data:`PRIVATE_NAMES` lists what is read, so that ``tests/integrations/test_asgi_routes.py``
fails with the name and the installed version when a release moves it.

Django's ``i18n_patterns`` put a ``LocalePrefixPattern`` first in the chain of patterns a
request matched (``ResolverMatch.tried[-1]``, documented); the class and its ``language_prefix``
are not documented: :data:`DJANGO_PRIVATE_NAMES`, checked by ``tests/integrations/test_django.py``.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

#: ``(where, what obs uses it for)`` of every private detail read below.
PRIVATE_NAMES: tuple[tuple[str, str], ...] = (
    (
        'scope["fastapi"]["effective_route_context"].path_format',
        "the full template of a route reached through include_router (FastAPI >= 0.116)",
    ),
    (
        "fastapi.routing._IncludedRouter._match",
        "the route an included router selects, to follow a Mount inside it (FastAPI >= 0.116)",
    ),
    (
        "litestar._asgi.asgi_router.ASGIRouter.handle_routing",
        "the template of a path whose method is not allowed (405), routed again (Litestar 2)",
    ),
)

#: The same for Django.
DJANGO_PRIVATE_NAMES: tuple[tuple[str, str], ...] = (
    (
        "django.urls.resolvers.LocalePrefixPattern.language_prefix",
        "to tell the language prefix of i18n_patterns from a route (Django >= 5.0)",
    ),
)

_FASTAPI_SCOPE_KEY = "fastapi"
_EFFECTIVE_ROUTE_KEY = "effective_route_context"


def fastapi_effective_path(scope: MutableMapping[str, Any]) -> str | None:
    """The full template FastAPI matched, prefixes of included routers applied, or ``None``
    (an older FastAPI, or not FastAPI)."""
    state = scope.get(_FASTAPI_SCOPE_KEY)
    if not isinstance(state, dict):
        return None
    path = getattr(state.get(_EFFECTIVE_ROUTE_KEY), "path_format", None)
    return path if isinstance(path, str) and path else None


#: Deepest chain of routers included in one another followed by :func:`fastapi_included_match`.
_MAX_INCLUDE_DEPTH = 32


def is_fastapi_included_router(route: Any) -> bool:
    """Whether *route* is FastAPI's ``_IncludedRouter`` (a router included by reference)."""
    return hasattr(route, "original_router") and callable(getattr(route, "_match", None))


def fastapi_included_match(
    included: Any, scope: dict[str, Any]
) -> tuple[Any, dict[str, Any], str | None]:
    """What an included router selects for *scope*: ``(route, child scope, template)``.

    Nested inclusions are followed. *route* is the selected route (a ``Mount`` comes back as
    FastAPI's copy with the inclusions' prefixes in its ``path``), ``None`` when nothing
    matched; *template* is the selected route's full template when FastAPI knows it.
    """
    for _ in range(_MAX_INCLUDE_DEPTH):
        _, child, route, context = included._match(scope)
        if route is None:
            return None, {}, None
        if not is_fastapi_included_router(route):
            template = getattr(context, "path_format", None) or None
            return route, child, template if isinstance(template, str) else None
        included = route
    return None, {}, None


_MULTI_SLASH = re.compile("//+")
_METHOD_NOT_ALLOWED = 405


def litestar_method_not_allowed_template(scope: MutableMapping[str, Any]) -> str | None:
    """The template of the route a Litestar app found for the request's path but not for its
    method (the app answered 405), or ``None`` (an unknown path, or not Litestar).

    The path is routed again as Litestar's router does (``root_path`` taken off, normalised),
    with one of the methods the exception allows: the template is the route's, never the path.
    """
    routing = getattr(
        getattr(scope.get("litestar_app"), "asgi_router", None), "handle_routing", None
    )
    if not callable(routing):
        return None
    path, root_path = str(scope.get("path", "")), str(scope.get("root_path", ""))
    if root_path:
        path = path.split(root_path, maxsplit=1)[-1]
    path = _MULTI_SLASH.sub("/", "/" + path.strip("/"))
    try:
        routing(path=path, method=scope.get("method"))
    except Exception as exc:
        allow = (getattr(exc, "headers", None) or {}).get("allow")
        if getattr(exc, "status_code", None) != _METHOD_NOT_ALLOWED or not allow:
            return None
        try:
            template = routing(path=path, method=allow.split(",")[0].strip())[4]
        except Exception:
            return None
        return template if isinstance(template, str) and template else None
    return None  # routed: the request failed before routing (an invalid Host header)


def is_django_locale_prefix(pattern: Any) -> bool:
    """Whether *pattern* (a URL resolver's ``pattern``) is the language prefix that Django's
    ``i18n_patterns`` put before their routes (``LocalePrefixPattern``)."""
    return hasattr(pattern, "language_prefix") and hasattr(pattern, "prefix_default_language")
