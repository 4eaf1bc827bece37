"""Pure ASGI middleware: request ids, one access line and RED metrics per request.

    app = ObservabilityMiddleware(app)

Works with any ASGI 3 application; route templates are read from the scope after routing
(Starlette and FastAPI set ``scope["route"]``, Litestar ``scope["path_template"]``).
The middleware keeps no per-request state on ``self``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry

from obs._http import HttpObserver, RequestObservation, RequestProfiler
from obs.config import Settings
from obs.exposition import render, start_metrics_server
from obs.routes import DEFAULT_MAX_ROUTES

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
RouteGetter = Callable[[Scope, str], "str | None"]

__all__ = ["ObservabilityMiddleware", "make_metrics_app", "route_template", "start_metrics_server"]

_INTERNAL_ERROR_BODY = b"Internal Server Error"


def route_template(scope: Scope, root_path: str) -> str | None:
    """The matched route template of a routed scope, or ``None`` when nothing matched.

    *root_path* is the scope's ``root_path`` as the middleware received it, so prefixes added
    by mounted sub-applications are kept and a proxy's prefix is not.
    """
    route = scope.get("route")
    if route is not None:  # Starlette, FastAPI
        path = getattr(route, "path", None)
        if not isinstance(path, str):
            return None
        prefix = str(scope.get("root_path", ""))[len(root_path) :]
        if hasattr(route, "routes"):  # a Mount that is itself the endpoint (e.g. static files)
            return prefix + "/{path}"
        return prefix + path
    template = scope.get("path_template")  # Litestar
    if isinstance(template, str) and template:
        return template
    return None


class ObservabilityMiddleware:
    """Observe every HTTP request of an ASGI app; other scope types pass straight through.

    :param registry: where metrics go (default: prometheus_client's global registry).
    :param settings: obs settings (default: read from ``OBS_*`` environment variables).
    :param record_body_sizes: also record the opt-in request/response body-size histograms.
    :param max_routes: distinct route templates before new ones are labelled ``_overflow``.
    :param access_log: override ``OBS_ACCESS_LOG`` (``False`` for metrics only).
    :param route_getter: how to read the route template from a scope after routing.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        registry: CollectorRegistry | None = None,
        settings: Settings | None = None,
        record_body_sizes: bool = False,
        max_routes: int = DEFAULT_MAX_ROUTES,
        access_log: bool | None = None,
        route_getter: RouteGetter | None = None,
        profiler: RequestProfiler | None = None,
    ) -> None:
        self.app = app
        self.observer = HttpObserver(
            registry=registry,
            settings=settings,
            record_body_sizes=record_body_sizes,
            max_routes=max_routes,
            access_log=access_log,
            profiler=profiler,
        )
        self.route_getter = route_template if route_getter is None else route_getter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = traceparent = user_agent = profile_token = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value
            elif name == b"traceparent":
                traceparent = value
            elif name == b"user-agent":
                user_agent = value
            elif name == b"x-obs-profile":
                profile_token = value
        observer = self.observer
        obs = observer.begin(
            scope["method"], scope["path"], request_id=request_id, traceparent=traceparent
        )
        _describe(obs, scope, user_agent)
        root_path: str = scope.get("root_path", "")
        route_getter = self.route_getter
        extra_headers = [(b"x-request-id", obs.request_id.encode("ascii"))]
        if profile_token is not None:
            profile_id = obs.start_profile(profile_token.decode("latin-1"))
            if profile_id is not None:
                extra_headers.append((b"x-obs-profile-id", profile_id.encode("ascii")))

        async def observed_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                obs.bytes_in += len(message.get("body", b""))
            return message

        async def observed_send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                obs.status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), *extra_headers]}
                await send(message)
            elif kind == "http.response.body":
                obs.bytes_out += len(message.get("body", b""))
                await send(message)
                if not message.get("more_body", False):
                    obs.route = route_getter(scope, root_path)
                    obs.finish()
            else:
                await send(message)

        try:
            await self.app(scope, observed_receive, observed_send)
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
                obs.route = route_getter(scope, root_path)
                obs.finish()
            obs.unbind()


def _describe(obs: RequestObservation, scope: Scope, user_agent: bytes | None) -> None:
    """Fill in what the access line says about the request; cheap, and only when logged."""
    if not obs.observer.access_log:
        return
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


def make_metrics_app(registry: CollectorRegistry | None = None) -> ASGIApp:
    """An ASGI app that serves *registry* (Prometheus text, or OpenMetrics when asked for)."""

    async def metrics_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        accept = accept_encoding = None
        for name, value in scope["headers"]:
            if name == b"accept":
                accept = value.decode("latin-1")
            elif name == b"accept-encoding":
                accept_encoding = value.decode("latin-1")
        body, headers = await asyncio.to_thread(render, registry, accept, accept_encoding)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
            }
        )
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})

    return metrics_app
