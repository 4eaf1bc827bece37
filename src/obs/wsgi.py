"""WSGI middleware: request ids, one access line and RED metrics per request.

    application = ObservabilityMiddleware(application)     # any WSGI app
    obs.integrations.flask.Observability(app)              # Flask: adds route templates
    MIDDLEWARE = ["obs.django.ObservabilityMiddleware", ...]  # Django

The same behaviour as :mod:`obs.asgi`, through the same core (:mod:`obs.http`).

When a request is recorded: as soon as its body is complete, i.e. when the server took the
last chunk of a list body, the chunk that completes a declared ``Content-Length``, or asked for
the next chunk of a body that has no more; else when the server closes the response: a
server that stops iterating before then does so because the client went away (status 499, the
bytes sent so far, as under ASGI). So test clients (Flask's ``test_client()``,
werkzeug's ``Client``) count and log a request without ``close()``, and streaming bodies count
in full. The inner iterable's ``close()`` is always called.

Each request runs in a context of its own
(:meth:`~obs.http.observation.RequestObservation.own_context`): the app, its body's iteration
and its ``close()`` see only the request's ids plus what the app binds itself, and nothing of
it reaches the next request on the thread or the server's own lines.

Route templates are read from the environ after the app ran: an ``obs.route`` key set by an
integration or a custom router (the Flask and Django integrations do), else the ``url_rule`` of
a werkzeug request still in ``environ["werkzeug.request"]`` (Flask clears it before the response
is returned, hence its integration), else the ``rule`` of the route Bottle leaves in
``environ["bottle.route"]``. Apps without a router get ``_unmatched``, never raw paths.

An exception that escapes the app is recorded (access line with the traceback, metrics) and
re-raised, so the server logs it as without obs; the exception carries the request id (a
note in its traceback, read by :mod:`obs.gunicorn` into a ``request_id`` field). Under
gunicorn, when no body byte went out, obs answers it itself, as under ASGI: a plain
``500 Internal Server Error`` that carries ``X-Request-ID`` and ``Connection: close`` (the
worker closes the connection of a request that raised; a keep-alive client not told so would
reuse it and get a reset). Any other server, which obs cannot ask to say ``Connection: close``
(PEP 3333 forbids the app the header), answers with its own 500 and closes the connection as
without obs; so does werkzeug's debugger, which shows its own page.

Inside another :class:`ObservabilityMiddleware` (an observed Flask app mounted in an observed
site), the inner middleware joins the outer one's request (``OBSERVATION_KEY`` in the environ):
the request is counted and logged once, with the outer id and options, and its route is the
inner app's template under the mount prefix between the two.

``X-Request-ID``: every response carries exactly one, the request's id; one the app set itself
is replaced (the rule of every obs integration: the header is the id in the logs).
"""

from __future__ import annotations

import contextvars
import os
import sys
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry

from obs._gunicorn_compat import connection_closer
from obs.http.describe import cgi_path, describe_cgi, describe_cgi_length, header_bytes
from obs.http.observation import RequestObservation
from obs.http.observer import HttpMiddleware
from obs.http.options import check_wsgi_app
from obs.prometheus.exposition import MetricsEndpoint, start_metrics_server

Environ = dict[str, Any]
Write = Callable[[bytes], object]
StartResponse = Callable[..., Write]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
RouteGetter = Callable[[Environ, str], "str | None"]

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

#: Environ key where integrations and custom routers put the matched route template.
ROUTE_KEY = "obs.route"
#: Environ key where integrations put an exception the framework turned into a 500 response.
EXCEPTION_KEY = "obs.exception"
#: Environ key holding the request's :class:`~obs.http.observation.RequestObservation` while it runs.
OBSERVATION_KEY = "obs.observation"

#: Set by werkzeug's debugger (and Flask's test client in a ``with`` block), which answer an
#: exception themselves: obs leaves the error response to them.
_DEBUGGER_KEY = "werkzeug.debug.preserve_context"
_INTERNAL_ERROR_BODY = b"Internal Server Error"
#: Where Bottle leaves the matched ``Route`` (its ``rule`` is the template, the prefix of an
#: app mounted with ``mount("/api/", child)`` included); documented as ``request.route``.
_BOTTLE_ROUTE_KEY = "bottle.route"
#: a2wsgi's environ key holding the ASGI scope of the request it runs the WSGI app for.
_ASGI_SCOPE_KEY = "asgi.scope"
_END: Any = object()


def route_template(environ: Environ, script_name: str) -> str | None:
    """The matched route template of a request after the app ran, or ``None``.

    *script_name* is ``SCRIPT_NAME`` as the middleware received it, so prefixes added by
    mounted sub-applications are kept and a proxy's prefix is not.
    """
    route = environ.get(ROUTE_KEY)
    if route is not None:
        return str(route)
    request = environ.get("werkzeug.request")  # Flask and other werkzeug apps
    if request is not None:
        rule = getattr(request, "url_rule", None)
        if rule is not None:
            prefix = str(environ.get("SCRIPT_NAME", ""))[len(script_name) :]
            return prefix + str(rule.rule)
    # Tested last, so Flask's and werkzeug's requests pay nothing for it.
    bottle_route = environ.get(_BOTTLE_ROUTE_KEY)
    if bottle_route is not None:
        rule = getattr(bottle_route, "rule", None)
        if isinstance(rule, str):
            return str(environ.get("SCRIPT_NAME", ""))[len(script_name) :] + rule
    return None


def without_request_id(
    headers: list[tuple[str, str]], id_header: str = "x-request-id"
) -> list[tuple[str, str]]:
    """*headers* without any *id_header* (lower case); the same list when it has none, the
    common case: a length test per header before any ``lower()``."""
    size = len(id_header)
    for name, _ in headers:
        if len(name) == size and name.lower() == id_header:
            return [h for h in headers if not (len(h[0]) == size and h[0].lower() == id_header)]
    return headers


class ObservabilityMiddleware(HttpMiddleware[WSGIApp, RouteGetter]):
    """Observe every request of a WSGI app.

    Takes the arguments of :class:`obs.http.observer.HttpMiddleware`; *route_getter* is called
    with the environ and the ``SCRIPT_NAME`` the middleware saw.
    """

    _check_app = staticmethod(check_wsgi_app)
    _default_route_getter = staticmethod(route_template)

    def _prepare(self) -> None:
        self._request_id_key = self.observer.request_id_environ_key
        self._label_keys = {
            source.header: "HTTP_" + source.header.upper().replace("-", "_")
            for _, source in self.observer.header_labels
        }

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        get = environ.get
        outer = get(OBSERVATION_KEY)
        if outer is not None:  # an obs middleware outside observes this request already
            self._join(outer, environ)
            return self.app(environ, start_response)
        if _ASGI_SCOPE_KEY in environ:  # a key test: a call only under a2wsgi
            scope = environ[_ASGI_SCOPE_KEY]
            outer = scope.get(OBSERVATION_KEY) if isinstance(scope, dict) else None
            if outer is not None:  # obs.asgi observes this request outside a2wsgi
                return self._join_asgi(outer, scope, environ, start_response)
        raw_request_id = get(self._request_id_key)
        traceparent = get("HTTP_TRACEPARENT")
        observation = RequestObservation(
            self.observer,
            environ["REQUEST_METHOD"],
            cgi_path(environ),
            # Converted only when sent: most requests carry neither header, and a call fewer
            # each (bench/instructions.py: about 600 instructions per request).
            None if raw_request_id is None else header_bytes(raw_request_id),
            None if traceparent is None else header_bytes(traceparent),
            # bind_ids=False, by position: a keyword argument costs a dict per request on the
            # way through type() (bench/instructions.py: about 700-1,500 instructions).
            False,
        )
        if self._label_keys:
            observation.labels = self.observer.header_label_values(
                lambda name: get(self._label_keys[name])
            )
        observation.route_source = (self.route_getter, environ, get("SCRIPT_NAME", ""))
        context = observation.own_context()
        response = ObservedResponse(observation, context, start_response, environ)
        try:
            if self.observer.access_log is not None:
                describe_cgi(observation, environ)
            elif self.observer.record_body_sizes:
                describe_cgi_length(observation, environ)
            environ[OBSERVATION_KEY] = observation
            if observation.request_id is not None:
                response.extra_headers.append(
                    (self.observer.request_id_header, observation.request_id)
                )
                token = get("HTTP_X_OBS_PROFILE")
                if token is not None:  # started in the request's context, where it samples
                    profile_id = context.run(observation.start_profile, token)
                    if profile_id is not None:
                        response.extra_headers.append(("X-Obs-Profile-Id", profile_id))
            response.body = context.run(self.app, environ, response.start_response)
        except BaseException as exc:
            response.abandon(exc)
            raise
        return response.wrapped_body()

    def _join(self, outer: RequestObservation, environ: Environ) -> None:
        """Inside another obs middleware (a Flask app observed with ``instrument()``, mounted
        in a site wrapped in this middleware): the request is the outer one's, counted and
        logged once with its id. This middleware only tells it the route, which the app it
        wraps knows: read by this middleware's route getter, after the mount prefix between
        the two (``/api`` of ``DispatcherMiddleware(site, {"/api": api})``)."""
        script_name = str(environ.get("SCRIPT_NAME", ""))
        outer_root = "" if outer.route_source is None else str(outer.route_source[2])
        prefix = script_name[len(outer_root) :] if script_name.startswith(outer_root) else ""
        outer.route_source = (_mounted_route, (self.route_getter, environ, script_name), prefix)

    def _join_asgi(
        self,
        outer: RequestObservation,
        scope: dict[str, Any],
        environ: Environ,
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        """Inside an ASGI app observed by :mod:`obs.asgi`, through a2wsgi (whose environ
        carries the scope): the request is the outer one's, as in :meth:`_join`. Its route is
        this app's template under the templates of the mounts between the two, found by the
        outer route getter (``Mount("/legacy", app=WSGIMiddleware(flask_app))``:
        ``/legacy/users/<int:id>``); the exception the framework answered with its 500 goes
        to the scope, where obs.asgi reads it."""
        environ[OBSERVATION_KEY] = outer  # what integrations report to (Flask's exception)
        source = outer.route_source
        if source is not None:
            outer.route_source = (
                _asgi_mounted_route,
                (self.route_getter, environ, str(environ.get("SCRIPT_NAME", "")), source),
                source[2],
            )
        try:
            return self.app(environ, start_response)
        finally:
            if EXCEPTION_KEY in environ:
                scope[EXCEPTION_KEY] = environ[EXCEPTION_KEY]


def _asgi_mounted_route(
    inner: tuple[RouteGetter, Environ, str, tuple[Any, Any, Any]], root_path: str
) -> str | None:
    """The route a WSGI app under a2wsgi matched, as the outer ASGI route getter places it:
    under the templates of the mounts it sits under (``ROUTE_KEY`` in a copy of the scope)."""
    getter, environ, script_name, (outer_getter, scope, _) = inner
    route = getter(environ, script_name)
    if route is None:
        return None
    return outer_getter({**scope, ROUTE_KEY: route}, root_path)  # type: ignore[no-any-return]


def _mounted_route(inner: tuple[RouteGetter, Environ, str], prefix: str) -> str | None:
    """The route an inner middleware's getter reads, under the prefix it is mounted at."""
    getter, environ, script_name = inner
    route = getter(environ, script_name)
    return None if route is None else prefix + route


class ObservedResponse:
    """One request's response as the server sees it: wraps ``start_response`` and the body.

    Kept per request (never on the middleware), closed by the server exactly once. Every call
    into the app (its body's ``next()``, its ``close()``) runs in the request's own context.
    """

    __slots__ = (
        "_environ",
        "_server_start_response",
        "_server_write",
        "body",
        "chunks",
        "context",
        "declared_length",
        "extra_headers",
        "forwarded",
        "observation",
        "pending",
        "sent",
        "started",
    )

    def __init__(
        self,
        observation: RequestObservation,
        context: contextvars.Context,
        start_response: StartResponse,
        environ: Environ,
    ) -> None:
        self.observation = observation
        self.context = context
        self._server_start_response = start_response
        self._server_write: Write | None = None
        self._environ = environ
        self.extra_headers: list[tuple[str, str]] = []
        self.body: Iterable[bytes] = ()
        self.chunks: Generator[bytes, None, None] | None = None
        self.declared_length = -1  # the response's Content-Length, -1 when it has none
        self.sent = False  # whether a body byte reached the server (headers are out)
        self.started = False  # whether the app called start_response
        self.pending: tuple[str, list[tuple[str, str]]] | None = None  # not yet at the server
        self.forwarded = False  # whether the server's start_response was called

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Write:
        """Note the status and headers; they go to the server with the first body chunk.

        Held back (PEP 3333 lets a middleware pass them on any time before the first chunk)
        so that an exception the app raises after ``start_response`` but before its body can
        still be answered with one clean 500: gunicorn adds the headers of a second
        ``start_response`` to those of the first instead of replacing them.
        """
        length = -1
        for name, value in headers:
            if len(name) == 14 and name.lower() == "content-length" and value.isdigit():
                length = int(value)
        if self.extra_headers:
            headers = [
                *without_request_id(headers, self.extra_headers[0][0].lower()),
                *self.extra_headers,
            ]
        if self.forwarded:  # only with exc_info; the server re-raises if the headers are out
            self._server_write = self._server_start_response(status, headers, exc_info)
        else:
            self.pending = (status, headers)
        self.declared_length = length
        self.started = True
        try:
            self.observation.status = int(status[:3])
        except ValueError:
            self.observation.status = 500
        return self.write

    def forward(self) -> None:
        """Pass the held-back status and headers to the server (before the first chunk)."""
        pending = self.pending
        if pending is not None:
            self.pending = None
            self._server_write = self._server_start_response(*pending)
            self.forwarded = True

    def write(self, data: bytes) -> object:
        """The legacy ``write()`` callable of PEP 3333, counted."""
        if self.pending is not None:
            self.forward()
        if data:
            self.sent = True
            self.observation.bytes_out += len(data)
        assert self._server_write is not None
        return self._server_write(data)

    def failed(self, exc: BaseException) -> None:
        observation = self.observation
        if not self.sent:
            observation.status = 0  # nothing went out: the response is the 500
        if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
            observation.cancel(exc)
        else:
            observation.fail(exc)

    def answer_error(self, exc: BaseException) -> None:
        """Send the 500 of an exception ourselves while nothing went out, so that it carries
        ``X-Request-ID`` (called in the ``except`` block: ``sys.exc_info()`` is *exc*)."""
        if self.sent or not isinstance(exc, Exception) or _DEBUGGER_KEY in self._environ:
            return
        # The server closes the connection of a request that raised, whatever we answer, and
        # an app may not say so (PEP 3333 forbids it ``Connection``): a keep-alive client would
        # reuse the connection and get a reset. So obs answers only where it can ask the
        # server to say it (gunicorn); elsewhere the server answers, as without obs.
        close_connection = connection_closer(self._server_start_response)
        if close_connection is None:
            self.pending = None  # the app's own status and headers never reach the server
            return
        close_connection()
        headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(_INTERNAL_ERROR_BODY))),
            *self.extra_headers,
        ]
        self.pending = None  # the app's own status and headers never reach the server
        try:
            if self.forwarded:  # PEP 3333: a second start_response must pass exc_info
                write = self._server_start_response(
                    "500 Internal Server Error", headers, sys.exc_info()
                )
            else:
                write = self._server_start_response("500 Internal Server Error", headers)
            self.forwarded = True
            write(_INTERNAL_ERROR_BODY)
        except Exception:  # the server refuses or the client is gone: the server answers
            return
        self.sent = True
        self.observation.status = 500
        self.observation.bytes_out += len(_INTERNAL_ERROR_BODY)

    def abandon(self, exc: BaseException) -> None:
        """The app raised *exc* before its body was complete: answer, record, tag *exc*."""
        observation = self.observation
        if observation.finished:
            return
        self.failed(exc)
        self.answer_error(exc)
        self._finish()
        observation.note_on(exc)

    def _finish(self) -> None:
        """Record the request (in its context: the access line carries what the app bound)."""
        observation = self.observation
        environ = self._environ
        if observation.status == 0:  # never started: what the server sends is a 500
            observation.status = 500
        environ.pop(OBSERVATION_KEY, None)
        self.context.run(observation.settle, environ.get(EXCEPTION_KEY))

    def _complete(self) -> None:
        """The server has the whole body: stop the clock and record the request."""
        if not self.observation.finished:
            self.observation.complete()
            self._finish()

    def wrapped_body(self) -> Iterable[bytes]:
        """What the server gets: this response, sized when the app's body is, or the server's
        own file wrapper around an observed file, so that the server still knows what it would
        have known from the app's body (PEP 3333 lets it compute ``Content-Length`` when
        ``len(body) == 1``: waitress and gevent's pywsgi do, and answer a body without length
        chunked with ``Connection: close``)."""
        body = self.body
        file_wrapper = self._environ.get("wsgi.file_wrapper")
        if isinstance(file_wrapper, type) and isinstance(body, file_wrapper):
            wrapped = _wrapped_file(body)
            if wrapped is not None:
                # Keep the server's sendfile() path: a new wrapper around an observed file.
                self.forward()
                self.sent = True
                return file_wrapper(ObservedFile(wrapped[0], self), wrapped[1])  # type: ignore[no-any-return]
        if hasattr(body, "__len__"):
            self.__class__ = SizedObservedResponse  # same slots: only __len__ is added
        return self

    def __iter__(self) -> Iterator[bytes]:
        body = self.body
        if type(body) is list or type(body) is tuple:  # nothing of the app runs
            self.chunks = self._listed(body)
        else:
            self.chunks = self._stream(body)
        return self.chunks

    def _listed(self, body: list[bytes] | tuple[bytes, ...]) -> Generator[bytes, None, None]:
        """A body known in full: complete when the server takes its last chunk."""
        observation = self.observation
        for chunk in body:
            observation.bytes_out += len(chunk)
        self.sent = observation.bytes_out > 0
        self.forward()
        last = len(body)
        for index, chunk in enumerate(body, 1):
            if index == last:
                self._complete()
            yield chunk
        if not last:
            self._complete()

    def _stream(self, body: Iterable[bytes]) -> Generator[bytes, None, None]:
        """The app's chunks, counted, each made in the request's context; complete when the
        declared ``Content-Length`` went out or the app has no more."""
        observation = self.observation
        run = self.context.run
        try:
            chunks = run(iter, body)
            while (chunk := run(next, chunks, _END)) is not _END:
                if self.pending is not None:
                    self.forward()
                if chunk:
                    self.sent = True
                    observation.bytes_out += len(chunk)
                    if 0 <= self.declared_length <= observation.bytes_out:
                        self._complete()
                yield chunk
            # Tested here, as in the loop: two calls fewer per request when the last chunk
            # completed the body (bench/instructions.py: about 900 instructions).
            if self.pending is not None:
                self.forward()
            if not observation.finished:
                self._complete()
        except GeneratorExit:  # the server stopped early (client gone): close() records it
            raise
        except BaseException as exc:
            if not observation.finished:
                self.abandon(exc)
            raise

    def close(self) -> None:
        """Called by the server once: close the app's iterable (always), then finish."""
        observation = self.observation
        try:
            if self.chunks is not None:
                self.chunks.close()
            close = getattr(self.body, "close", None)
            if close is not None:
                self.context.run(close)
        except BaseException as exc:
            if observation.exception is None and not observation.finished:
                self.failed(exc)
            raise
        finally:
            if not observation.finished:
                if self.chunks is not None and observation.has_body():
                    # The server stopped iterating before the body was complete (its last
                    # chunk, its declared Content-Length, its end): the client went away.
                    # A response without a body was complete with its head, whatever the
                    # server does with the app's chunks (waitress stops a HEAD's when the
                    # client, which has all it asked for, closes the connection).
                    observation.client_gone = True
                self._finish()


class SizedObservedResponse(ObservedResponse):
    """An observed response whose app returned a body with a length (a list, a tuple): the
    server may read it, as from the app's body."""

    __slots__ = ()

    def __len__(self) -> int:
        return len(self.body)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[bytes]:
        if self.chunks is not None:
            # The server reads the body a second time: gevent's pywsgi sums the chunks' lengths
            # while sending the first. Counted and completed once, by the first.
            return iter(self.body)
        return super().__iter__()


def _wrapped_file(body: Any) -> tuple[Any, int] | None:
    """The file and block size inside a server's ``wsgi.file_wrapper`` instance: ``filelike``
    and ``blksize`` (wsgiref, gunicorn), ``file`` and ``block_size`` (waitress, whose own
    ``ReadOnlyFileBasedBuffer`` is the only body it sends from its main loop)."""
    filelike = getattr(body, "filelike", None)
    if filelike is not None:
        return filelike, getattr(body, "blksize", 8192)
    filelike = getattr(body, "file", None)
    if filelike is not None:
        return filelike, getattr(body, "block_size", 32768)
    return None


class ObservedFile:
    """A file handed to the server's ``wsgi.file_wrapper`` whose ``close()`` finishes the
    observation; everything else (``fileno``, ``read``, ``seek``...) is the file's own."""

    def __init__(self, filelike: Any, response: ObservedResponse) -> None:
        self._filelike = filelike
        self._response = response
        try:
            remaining = os.fstat(filelike.fileno()).st_size - filelike.tell()
            response.observation.bytes_out += max(remaining, 0)
        except Exception:  # not a real file: counted as it is read
            self.read = self._counted_read

    def _counted_read(self, *args: Any) -> Any:
        data = self._filelike.read(*args)
        self._response.observation.bytes_out += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._filelike, name)

    def close(self) -> None:
        self._response.close()


class MetricsApp(MetricsEndpoint):
    """A WSGI app serving a registry: the
    :class:`obs.prometheus.exposition.MetricsEndpoint` every obs endpoint adapts, as WSGI."""

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if ROUTE_KEY not in environ:
            script_name, path_info = environ.get("SCRIPT_NAME", ""), environ.get("PATH_INFO", "")
            bounded = path_info if path_info in ("", "/", "/metrics") else "/{path}"
            environ[ROUTE_KEY] = (script_name + bounded) or "/"
        return self.wsgi_app(environ, start_response)


def make_metrics_app(
    registry: CollectorRegistry | None = None,
    *,
    username: str | None = None,
    password: str | None = None,
) -> MetricsApp:
    """A WSGI app that serves *registry* (Prometheus text, or OpenMetrics when asked for).

    Mount it with werkzeug's ``DispatcherMiddleware(app, {"/metrics": make_metrics_app()})``,
    or call it from your own dispatch. With *username* and *password*, scrapes need HTTP basic
    auth. With ``PROMETHEUS_MULTIPROC_DIR`` set and no *registry*, it serves the aggregate of
    all worker processes (see ``docs/multiprocess.md``).
    """
    return MetricsApp(registry, username=username, password=password)
