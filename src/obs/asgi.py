"""Pure ASGI middleware: request ids, one access line and RED metrics per request.

    app = ObservabilityMiddleware(app)

Works with any ASGI 3 application; route templates are read from the scope after routing
(Starlette and FastAPI set ``scope["route"]``, Litestar ``scope["path_template"]``).
The middleware keeps no per-request state on ``self``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Unpack

from prometheus_client import CollectorRegistry

from obs._http import HttpObserver, ObserverOptions, RequestObservation
from obs._internal import report_internal_error
from obs.exposition import (
    UNAUTHORIZED_HEADERS,
    authorized,
    basic_authorization,
    render,
    start_metrics_server,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
RouteGetter = Callable[[Scope, str], "str | None"]

__all__ = ["MetricsApp", "ObservabilityMiddleware", "make_metrics_app", "route_template", "start_metrics_server"]

_INTERNAL_ERROR_BODY = b"Internal Server Error"
_perf_counter = time.perf_counter


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
    current_root = scope.get("root_path", "")
    prefix = "" if current_root == root_path else str(current_root)[len(root_path) :]
    key = (id(route), prefix) if prefix else id(route)  # a plain int in the usual case
    cached = _templates.get(key)
    if cached is not None and cached[0] is route:
        return cached[1]
    template = _template_of(route, prefix)
    if len(_templates) < 4096:
        _templates[key] = (route, template)
    return template


# Starlette routes are unhashable (they define __eq__): cached by id, checked by identity.
_templates: dict[int | tuple[int, str], tuple[Any, str | None]] = {}


def _template_of(route: Any, prefix: str) -> str | None:
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return None
    if hasattr(route, "routes"):  # a Mount that is itself the endpoint (e.g. static files)
        return prefix + "/{path}"
    return prefix + path


_endpoint_routes: dict[tuple[int, int], Any] = {}


def _route_of_endpoint(router: Any, endpoint: Any) -> Any:
    key = (id(router), id(endpoint))
    route = _endpoint_routes.get(key)
    if route is not None and _serves(route, endpoint):
        return route
    for route in getattr(router, "routes", ()):
        if _serves(route, endpoint):
            if len(_endpoint_routes) < 1024:
                _endpoint_routes[key] = route
            return route
    return None


def _serves(route: Any, endpoint: Any) -> bool:
    return getattr(route, "endpoint", None) is endpoint or getattr(route, "app", None) is endpoint


def _safe_route(getter: RouteGetter, scope: Scope, root_path: str, registry: Any) -> str | None:
    """The route template, or ``None`` if the getter fails: a route must never fail a request."""
    try:
        return getter(scope, root_path)
    except Exception as exc:
        report_internal_error("route template", exc, registry)
        return None


class ObservabilityMiddleware:
    """Observe every HTTP request of an ASGI app; other scope types pass straight through.

    Options (``registry``, ``settings``, ``record_body_sizes``, ``max_routes``, ``access_log``,
    ``request_ids``, ``profiler``) are those of :class:`obs._http.ObserverOptions`;
    *route_getter* reads the route template from a scope after the app ran.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        route_getter: RouteGetter | None = None,
        **options: Unpack[ObserverOptions],
    ) -> None:
        self.app = app
        self.observer = HttpObserver(**options)
        self.route_getter = route_template if route_getter is None else route_getter
        # Resolved once: which request headers matter, and whether request bytes are counted.
        wanted = set()
        if self.observer.request_ids:
            wanted |= {b"x-request-id", b"traceparent"}
        if self.observer.access_log:
            wanted.add(b"user-agent")
        if self.observer.profiler is not None:
            wanted.add(b"x-obs-profile")
        self._wanted_headers = frozenset(wanted)
        # Bytes in and out are counted only where they are reported.
        self._count_bytes = self.observer.access_log or self.observer.record_body_sizes

    def _begin(self, scope: Scope) -> tuple[RequestObservation, list[tuple[bytes, bytes]] | None]:
        """Start observing a request whose headers matter; the headers to add to its response."""
        wanted = self._wanted_headers
        found: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name in wanted:
                found[name] = value
        obs = RequestObservation(
            self.observer,
            scope["method"],
            scope["path"],
            found.get(b"x-request-id"),
            found.get(b"traceparent"),
        )
        if self.observer.access_log:
            _describe(obs, scope, found.get(b"user-agent"))
        request_id = obs.request_id
        if request_id is None:
            return obs, None
        extra_headers = [(b"x-request-id", request_id.encode())]
        profile_token = found.get(b"x-obs-profile")
        if profile_token is not None:
            profile_id = obs.start_profile(profile_token.decode("latin-1"))
            if profile_id is not None:
                extra_headers.append((b"x-obs-profile-id", profile_id.encode("ascii")))
        return obs, extra_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._wanted_headers:
            obs, extra_headers = self._begin(scope)
        else:  # bare metrics: nothing to read from the request
            obs = RequestObservation(self.observer, scope["method"], scope["path"])
            extra_headers = None
        count_bytes_out = self._count_bytes
        if count_bytes_out:
            receive = _counting_receive(obs, receive)
        root_path: str = scope.get("root_path", "")
        route_getter = self.route_getter

        async def observed_send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.body":
                if count_bytes_out:
                    obs.bytes_out += len(message.get("body", b""))
                await send(message)
                if not message.get("more_body"):
                    # The clock stops at the last body byte; a 5xx is finished when the app
                    # returns or raises, so an exception that follows its 500 is recorded too.
                    obs.end = _perf_counter()
                    if obs.status >= 500:
                        return
                    try:
                        obs.route = route_getter(scope, root_path)
                    except Exception as exc:  # a route must never fail a request
                        report_internal_error("route template", exc, obs.observer.registry)
                    obs.finish()
            elif kind == "http.response.start":
                obs.status = message["status"]
                if extra_headers is not None:  # a copy: the app may reuse its message or list
                    message = {**message, "headers": [*message.get("headers", ()), *extra_headers]}
                await send(message)
            else:
                await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit) as exc:
            obs.cancel(exc)
            raise
        except BaseException as exc:
            started = obs.status != 0
            obs.fail(exc)
            if not started:
                await _send_error_response(observed_send)
            raise
        finally:
            if not obs.finished:
                obs.route = _safe_route(route_getter, scope, root_path, obs.observer.registry)
                obs.finish()
            if obs.id_token is not None:
                obs.unbind()


def _counting_receive(obs: RequestObservation, receive: Receive) -> Receive:
    """*receive*, counting the request body's bytes into *obs*."""

    async def counted() -> Message:
        message = await receive()
        if message["type"] == "http.request":
            obs.bytes_in += len(message.get("body", b""))
        return message

    return counted


def _describe(obs: RequestObservation, scope: Scope, user_agent: bytes | None) -> None:
    """Fill in what the access line says about the request."""
    query = scope.get("query_string")
    if query:
        obs.query = query.decode("latin-1")
    client = scope.get("client")
    if client:
        obs.client = f"{client[0]}:{client[1]}"
    if user_agent is not None:
        obs.user_agent = user_agent.decode("latin-1")


async def _send_error_response(send: Send) -> None:
    """Answer 500 ourselves, so that even this response carries the request id."""
    try:
        await send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(_INTERNAL_ERROR_BODY)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _INTERNAL_ERROR_BODY})
    except Exception:  # the client is gone or the server refuses: the exception still propagates
        pass


class MetricsApp:
    """An ASGI app serving a registry; a class, so routers mount it as an app, not a view."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.registry = registry
        self._expected_authorization = basic_authorization(username, password)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        accept = accept_encoding = authorization = None
        for name, value in scope["headers"]:
            if name == b"accept":
                accept = value.decode("latin-1")
            elif name == b"accept-encoding":
                accept_encoding = value.decode("latin-1")
            elif name == b"authorization":
                authorization = value
        if not authorized(self._expected_authorization, authorization):
            await send({"type": "http.response.start", "status": 401, "headers": UNAUTHORIZED_HEADERS})
            await send({"type": "http.response.body", "body": b"authentication required\n"})
            return
        # Rendering is CPU work that can take milliseconds: keep it off the event loop.
        body, headers = await asyncio.to_thread(render, self.registry, accept, accept_encoding)
        raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers]
        await send({"type": "http.response.start", "status": 200, "headers": raw_headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


def make_metrics_app(
    registry: CollectorRegistry | None = None,
    *,
    username: str | None = None,
    password: str | None = None,
) -> MetricsApp:
    """An ASGI app that serves *registry* (Prometheus text, or OpenMetrics when asked for).

    With *username* and *password*, scrapes need HTTP basic auth (Prometheus: ``basic_auth`` in
    the scrape config). Starlette/FastAPI: ``app.add_route("/metrics", make_metrics_app())``.
    """
    return MetricsApp(registry, username=username, password=password)
