"""Pure ASGI middleware: request ids, one access line and RED metrics per request.

    app = ObservabilityMiddleware(app)

Works with any ASGI 3 application; route templates are read from the scope after routing
(Starlette and FastAPI set ``scope["route"]``, Litestar ``scope["path_template"]``).
The middleware keeps no per-request state on ``self``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Unpack

from prometheus_client import CollectorRegistry

from obs.http.describe import describe_scope
from obs.http.observation import RequestObservation
from obs.http.observer import HttpObserver, ObserverOptions
from obs.http.options import check_asgi_app, check_route_getter
from obs.integrations.asgi_routes import route_template
from obs.prometheus.exposition import (
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

__all__ = [
    "MetricsApp",
    "ObservabilityMiddleware",
    "make_metrics_app",
    "route_template",
    "start_metrics_server",
]

_INTERNAL_ERROR_BODY = b"Internal Server Error"


class ObservabilityMiddleware:
    """Observe every HTTP request of an ASGI app; other scope types pass straight through.

    Options (``registry``, ``settings``, ``record_body_sizes``, ``max_routes``, ``access_log``,
    ``request_ids``, ``profiler``) are those of :class:`obs.http.observer.ObserverOptions`;
    *route_getter* reads the route template from a scope after the app ran.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        route_getter: RouteGetter | None = None,
        **options: Unpack[ObserverOptions],
    ) -> None:
        check_asgi_app(app)
        check_route_getter(route_getter)
        self.app = app
        self.observer = HttpObserver(**options)
        self.route_getter = route_template if route_getter is None else route_getter
        # Resolved once: which request headers matter, and whether request bytes are counted.
        self._request_id_header = self.observer.request_id_header_bytes
        self._label_headers = {source.header.encode() for _, source in self.observer.header_labels}
        wanted = set(self._label_headers)
        if self.observer.request_ids:
            wanted |= {self._request_id_header, b"traceparent"}
        if self.observer.access_log is not None:
            wanted.add(b"user-agent")
        if self.observer.profiler is not None:
            wanted.add(b"x-obs-profile")
        self._wanted_headers = frozenset(wanted)
        # Bytes in and out are counted only where they are reported.
        self._count_bytes = self.observer.access_log is not None or self.observer.record_body_sizes

    def _begin(self, scope: Scope) -> tuple[RequestObservation, list[tuple[bytes, bytes]] | None]:
        """Start observing a request whose headers matter; the headers to add to its response."""
        wanted = self._wanted_headers
        found: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name in wanted:
                found[name] = value
        observation = RequestObservation(
            self.observer,
            scope["method"],
            scope["path"],
            found.get(self._request_id_header),
            found.get(b"traceparent"),
        )
        if self._label_headers:
            observation.labels = self.observer.header_label_values(
                lambda name: (
                    None if (v := found.get(name.encode())) is None else v.decode("latin-1")
                )
            )
        if self.observer.access_log is not None:
            describe_scope(observation, scope, found.get(b"user-agent"))
        request_id = observation.request_id
        if request_id is None:
            return observation, None
        extra_headers = [(self._request_id_header, request_id.encode())]
        profile_token = found.get(b"x-obs-profile")
        if profile_token is not None:
            profile_id = observation.start_profile(profile_token.decode("latin-1"))
            if profile_id is not None:
                extra_headers.append((b"x-obs-profile-id", profile_id.encode("ascii")))
        return observation, extra_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._wanted_headers:
            observation, extra_headers = self._begin(scope)
        else:  # bare metrics: nothing to read from the request
            observation = RequestObservation(self.observer, scope["method"], scope["path"])
            extra_headers = None
        count_bytes_out = self._count_bytes
        if count_bytes_out:
            receive = _counting_receive(observation, receive)
        root_path: str = scope.get("root_path", "")
        route_getter = self.route_getter

        async def observed_send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.body":
                if count_bytes_out:
                    observation.bytes_out += len(message.get("body", b""))
                await send(message)
                # The clock stops at the last body byte; a 5xx is finished when the app
                # returns or raises, so an exception that follows its 500 is recorded too.
                if not message.get("more_body") and observation.complete():
                    observation.read_route(route_getter, scope, root_path)
                    observation.finish()
            elif kind == "http.response.start":
                observation.status = message["status"]
                if extra_headers is not None:  # a copy: the app may reuse its message or list
                    message = {**message, "headers": [*message.get("headers", ()), *extra_headers]}
                await send(message)
            else:
                await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit) as exc:
            observation.cancel(exc)
            raise
        except BaseException as exc:
            started = observation.status != 0
            observation.fail(exc)
            if not started:
                await _send_error_response(observed_send)
            raise
        finally:
            if not observation.finished:
                observation.read_route(route_getter, scope, root_path)
                observation.finish()
            if observation.tokens is not None:
                observation.unbind()


def _counting_receive(observation: RequestObservation, receive: Receive) -> Receive:
    """*receive*, counting the request body's bytes into *observation*."""

    async def counted() -> Message:
        message = await receive()
        if message["type"] == "http.request":
            observation.bytes_in += len(message.get("body", b""))
        return message

    return counted


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
            await send(
                {"type": "http.response.start", "status": 401, "headers": UNAUTHORIZED_HEADERS}
            )
            await send({"type": "http.response.body", "body": b"authentication required\n"})
            return
        # Rendering is CPU work that can take milliseconds: keep it off the event loop.
        body, headers = await asyncio.to_thread(render, self.registry, accept, accept_encoding)
        raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers]
        await send({"type": "http.response.start", "status": 200, "headers": raw_headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )


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
