"""Pure ASGI middleware: request ids, one access line and RED metrics per request.

    app = ObservabilityMiddleware(app)

Works with any ASGI 3 application; route templates are read from the scope after routing
(Starlette and FastAPI set ``scope["route"]``, Litestar ``scope["path_template"]``).
The middleware keeps no per-request state on ``self``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry

from obs.http.describe import describe_scope
from obs.http.observation import RequestObservation
from obs.http.observer import HttpMiddleware
from obs.http.options import check_asgi_app
from obs.integrations.asgi_routes import ROUTE_KEY, route_template
from obs.prometheus.exposition import MetricsEndpoint, start_metrics_server

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
RouteGetter = Callable[[Scope, str], "str | None"]

__all__ = [
    "EXCEPTION_KEY",
    "OBSERVATION_KEY",
    "ROUTE_KEY",
    "MetricsApp",
    "ObservabilityMiddleware",
    "make_metrics_app",
    "route_template",
    "start_metrics_server",
]

_INTERNAL_ERROR_BODY = b"Internal Server Error"
_HTTP1 = ("1.1", "1.0")
#: ASGI extensions whose message sends a response body from a file, not as ``body`` bytes.
_FILE_BODIES = ("http.response.pathsend", "http.response.zerocopysend")

#: Scope key where integrations put an exception the framework turned into a 5xx response
#: (Litestar's :class:`obs.integrations.litestar.ObservabilityPlugin`, Django's middleware).
EXCEPTION_KEY = "obs.exception"
#: Scope key holding the request's :class:`~obs.http.observation.RequestObservation` while it
#: runs: an inner obs middleware (``obs.django`` under Django's ASGI handler, a second
#: ``obs.asgi``) sees it and reports to it instead of counting the request again.
OBSERVATION_KEY = "obs.observation"


class ObservabilityMiddleware(HttpMiddleware[ASGIApp, RouteGetter]):
    """Observe every HTTP request of an ASGI app; other scope types pass straight through.

    Takes the arguments of :class:`obs.http.observer.HttpMiddleware`; *route_getter* is called
    with the scope and its root path.
    """

    _check_app = staticmethod(check_asgi_app)
    _default_route_getter = staticmethod(route_template)

    def _prepare(self) -> None:
        # Resolved once: which request headers matter, and whether request bytes are counted.
        self._request_id_header = self.observer.request_id_header_bytes
        # Each extra label's header as the scope spells it (lower-case bytes), encoded once.
        self._label_headers = {
            source.header: source.header.encode() for _, source in self.observer.header_labels
        }
        wanted = set(self._label_headers.values())
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
                    None
                    if (v := found.get(self._label_headers[name])) is None
                    else v.decode("latin-1")
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
        if scope["type"] != "http" or OBSERVATION_KEY in scope:
            # Not HTTP, or an outer obs middleware observes this request already.
            await self.app(scope, receive, send)
            return
        if self._wanted_headers:
            observation, extra_headers = self._begin(scope)
        else:  # bare metrics: nothing to read from the request
            observation = RequestObservation(self.observer, scope["method"], scope["path"])
            extra_headers = None
        # Inside a framework's own middleware stack (added with Starlette's add_middleware,
        # Litestar's middleware=): its error handler answers an exception, not obs.
        framework_answers = "app" in scope
        scope[OBSERVATION_KEY] = observation
        count_bytes = self._count_bytes
        observation.route_source = (self.route_getter, scope, scope.get("root_path", ""))

        async def observed_receive() -> Message:
            message = await receive()
            kind = message["type"]
            if kind == "http.request":
                if count_bytes:
                    observation.bytes_in += len(message.get("body", b""))
            elif kind == "http.disconnect" and not observation.end:
                observation.client_gone = True  # before the last byte: the client went away
            return message

        async def observed_send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.body":
                try:
                    await send(message)
                except OSError:  # the server could not deliver it: the client is gone
                    observation.client_gone = True
                    raise
                if count_bytes:
                    observation.bytes_out += len(message.get("body", b""))
                # The clock stops at the last body byte; a 5xx is finished when the app
                # returns or raises, so an exception that follows its 500 is recorded too.
                # Below 500 there is no handled exception to note (settle() notes one only
                # for a 5xx), so the scope is not read here and not kept by this closure
                # (bench/instructions.py: about 650 instructions per request).
                if not message.get("more_body") and observation.complete():
                    observation.settle()
            elif kind == "http.response.start":
                status = message["status"]
                if extra_headers is not None:  # a copy: the app may reuse its message or list
                    message = {**message, "headers": _with_ours(message, extra_headers)}
                try:
                    await send(message)
                except OSError:
                    observation.client_gone = True
                    raise
                # Recorded once the server took it: a second start it rejects is not what
                # the client got.
                if not observation.status:
                    observation.status = status
            elif kind in _FILE_BODIES:  # a body the server reads from a file itself
                try:
                    await send(message)
                except OSError:
                    observation.client_gone = True
                    raise
                if count_bytes:
                    observation.bytes_out += _file_body_size(message)
                if not message.get("more_body") and observation.complete():
                    observation.settle()
            else:
                await send(message)

        try:
            await self.app(scope, observed_receive, observed_send)
            if not observation.status and not observation.client_gone:
                # The app returned without a response: the server answers 500, so do we (with
                # the request id), and record what the client got.
                await _send_error_response(observed_send)
        except BaseException as exc:
            if _cancelled_from_outside(exc, observation):
                observation.cancel(exc)
            elif observation.finished:  # after the response: a background task raised
                observation.fail_late(exc)
            else:  # the app raised (a CancelledError of its own too): the server answers 500
                started = observation.status != 0
                observation.fail(exc)
                if not started and not framework_answers:
                    # The server closes the connection of a request that raised, whatever we
                    # sent; on HTTP/1 the response says so, as the server's own 500 does, or a
                    # keep-alive client reuses the connection and gets a reset.
                    http1 = scope.get("http_version", "1.1") in _HTTP1
                    await _send_error_response(observed_send, close=http1)
            raise
        finally:
            if not observation.finished:
                observation.settle(scope.get(EXCEPTION_KEY))
            if observation.tokens is not None:
                observation.unbind()


def _file_body_size(message: Message) -> int:
    """The bytes of a response body sent from a file (``http.response.pathsend``: the whole
    file at ``path``; ``http.response.zerocopysend``: ``count`` bytes of descriptor ``file``
    from ``offset``, or to its end); 0 when that cannot be read."""
    try:
        if message["type"] == "http.response.pathsend":
            return os.stat(message["path"]).st_size
        count = message.get("count")
        if count is not None:
            return int(count)
        file = message["file"]
        fd = file if isinstance(file, int) else file.fileno()
        offset = message.get("offset")
        start = os.lseek(fd, 0, os.SEEK_CUR) if offset is None else int(offset)
        return max(0, os.fstat(fd).st_size - start)
    except (OSError, AttributeError, KeyError, TypeError, ValueError):
        return 0


def _cancelled_from_outside(exc: BaseException, observation: RequestObservation) -> bool:
    """Whether *exc* stops the request from outside (the client went away, the server or the
    process is stopping) rather than being the app's own failure."""
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        return True
    if not isinstance(exc, asyncio.CancelledError):
        return False
    task = asyncio.current_task()
    return observation.client_gone or (task is not None and task.cancelling() > 0)


def _with_ours(message: Message, ours: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The response's headers with obs's added; a request-id header the app set is replaced, so
    the client gets one, the id of the logs (the rule of every obs integration). The request-id
    header comes first in *ours*, its name in lower case."""
    headers = message.get("headers", ())
    id_header = ours[0][0]
    size = len(id_header)
    for name, _ in headers:
        if len(name) == size and name.lower() == id_header:  # a length test before lower()
            return [
                h for h in headers if not (len(h[0]) == size and h[0].lower() == id_header)
            ] + ours
    return [*headers, *ours]


async def _send_error_response(send: Send, *, close: bool = False) -> None:
    """Answer 500 ourselves, so that even this response carries the request id; *close* adds
    ``Connection: close`` (HTTP/1 only: HTTP/2 forbids the header)."""
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(_INTERNAL_ERROR_BODY)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    try:
        await send({"type": "http.response.start", "status": 500, "headers": headers})
        await send({"type": "http.response.body", "body": _INTERNAL_ERROR_BODY})
    except Exception:  # the client is gone or the server refuses: the exception still propagates
        pass


class MetricsApp(MetricsEndpoint):
    """An ASGI app serving a registry; a class, so routers mount it as an app, not a view.

    The :class:`obs.prometheus.exposition.MetricsEndpoint` every obs endpoint adapts, as ASGI.
    """

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
        # Rendering is CPU work that can take milliseconds: keep it off the event loop.
        scrape = await asyncio.to_thread(
            self.answer, scope["method"], accept, accept_encoding, authorization
        )
        raw_headers = [(k.lower().encode(), v.encode()) for k, v in scrape.headers]
        await send({"type": "http.response.start", "status": scrape.status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": scrape.body})


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
