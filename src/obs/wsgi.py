"""WSGI middleware: request ids, one access line and RED metrics per request.

    application = ObservabilityMiddleware(application)     # any WSGI app
    obs.integrations.flask.instrument(app)                 # Flask: adds route templates
    MIDDLEWARE = ["obs.django.ObservabilityMiddleware", ...]  # Django

The same behaviour as :mod:`obs.asgi`, through the same core (:mod:`obs._http`). A request is
timed until its body is exhausted and finished when the server closes the response iterable, so
streaming bodies count in full; the inner iterable's ``close()`` is always called.

Route templates are read from the environ after the app ran: an ``obs.route`` key set by an
integration or a custom router (the Flask and Django integrations do), else the ``url_rule`` of
a werkzeug request still in ``environ["werkzeug.request"]`` (Flask clears it before the response
is returned, hence its integration). Apps without a router get ``_unmatched``, never raw paths.

An exception that escapes the app before its response started is recorded as a 500 (access
line with the traceback, metrics) and re-raised, so the server answers with its own 500 and logs
it, exactly as without obs. Flask and Django turn view exceptions into 500 responses themselves;
those carry ``X-Request-ID`` like every other response.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any, Unpack

from prometheus_client import CollectorRegistry

from obs._http import HttpObserver, ObserverOptions, RequestObservation
from obs._internal import report_internal_error
from obs.context import REQUEST_ID, TRACE_ID
from obs.exposition import (
    UNAUTHORIZED_HEADERS,
    authorized,
    basic_authorization,
    render,
    start_metrics_server,
)

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
#: Environ key holding the request's :class:`~obs._http.RequestObservation` while it runs.
OBSERVATION_KEY = "obs.observation"


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
    return None


class ObservabilityMiddleware:
    """Observe every request of a WSGI app.

    Options (``registry``, ``settings``, ``record_body_sizes``, ``max_routes``, ``access_log``,
    ``request_ids``, ``profiler``) are those of :class:`obs._http.ObserverOptions`;
    *route_getter* reads the route template from the environ after the app ran.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        route_getter: RouteGetter | None = None,
        **options: Unpack[ObserverOptions],
    ) -> None:
        self.app = app
        self.observer = HttpObserver(**options)
        self.route_getter = route_template if route_getter is None else route_getter

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        get = environ.get
        request_id = get("HTTP_X_REQUEST_ID")
        traceparent = get("HTTP_TRACEPARENT")
        script_name: str = get("SCRIPT_NAME", "")
        path = script_name + get("PATH_INFO", "")
        if not path.isascii():  # WSGI strings carry the raw bytes as latin-1
            path = path.encode("latin-1", "replace").decode("utf-8", "replace")
        obs = RequestObservation(
            self.observer,
            environ["REQUEST_METHOD"],
            path or "/",
            raw_request_id=None if request_id is None else request_id.encode("latin-1", "replace"),
            traceparent=None if traceparent is None else traceparent.encode("latin-1", "replace"),
        )
        response = ObservedResponse(obs, start_response, environ, self.route_getter, script_name)
        try:
            _describe(obs, environ)
            environ[OBSERVATION_KEY] = obs
            if obs.request_id is not None:
                response.extra_headers.append(("X-Request-ID", obs.request_id))
                token = get("HTTP_X_OBS_PROFILE")
                if token is not None:
                    profile_id = obs.start_profile(token)
                    if profile_id is not None:
                        response.extra_headers.append(("X-Obs-Profile-Id", profile_id))
            response.body = self.app(environ, response.start_response)
        except BaseException as exc:
            response.failed(exc)
            response.settle()
            obs.finish()
            raise
        finally:
            obs.unbind()
        return response.wrapped_body()


def _describe(obs: RequestObservation, environ: Environ) -> None:
    """Fill in what the access line says about the request; cheap, and only when logged."""
    if not obs.observer.access_log:
        return
    get = environ.get
    query = get("QUERY_STRING")
    if query:
        obs.query = query
    client = get("REMOTE_ADDR")
    if client:
        port = get("REMOTE_PORT")
        obs.client = f"{client}:{port}" if port else client
    obs.user_agent = get("HTTP_USER_AGENT")
    length = get("CONTENT_LENGTH")
    if length:
        try:
            obs.bytes_in = max(int(length), 0)  # what the client announced
        except ValueError:
            pass


class ObservedResponse:
    """One request's response as the server sees it: wraps ``start_response`` and the body.

    Kept per request (never on the middleware), closed by the server exactly once.
    """

    __slots__ = (
        "_environ",
        "_route_getter",
        "_script_name",
        "_server_start_response",
        "_server_write",
        "body",
        "chunks",
        "extra_headers",
        "obs",
        "sent",
    )

    def __init__(
        self,
        obs: RequestObservation,
        start_response: StartResponse,
        environ: Environ,
        route_getter: RouteGetter,
        script_name: str,
    ) -> None:
        self.obs = obs
        self._server_start_response = start_response
        self._server_write: Write | None = None
        self._environ = environ
        self._route_getter = route_getter
        self._script_name = script_name
        self.extra_headers: list[tuple[str, str]] = []
        self.body: Iterable[bytes] = ()
        self.chunks: Generator[bytes, None, None] | None = None
        self.sent = False  # whether a body byte reached the server (headers are out)

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Write:
        if self.extra_headers:
            headers = [*headers, *self.extra_headers]
        if exc_info is None:
            write = self._server_start_response(status, headers)
        else:  # the server re-raises if the headers are already out
            write = self._server_start_response(status, headers, exc_info)
        try:
            self.obs.status = int(status[:3])
        except ValueError:
            self.obs.status = 500
        self._server_write = write
        return self.write

    def write(self, data: bytes) -> object:
        """The legacy ``write()`` callable of PEP 3333, counted."""
        if data:
            self.sent = True
            self.obs.bytes_out += len(data)
        assert self._server_write is not None
        return self._server_write(data)

    def failed(self, exc: BaseException) -> None:
        obs = self.obs
        if not self.sent:
            obs.status = 0  # nothing went out: the server answers 500
        if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
            obs.cancel(exc)
        else:
            obs.fail(exc)

    def settle(self) -> None:
        """Read the route and any exception the framework handled; never raises."""
        obs = self.obs
        environ = self._environ
        try:
            obs.route = self._route_getter(environ, self._script_name)
        except Exception as exc:
            report_internal_error("route template", exc, obs.observer.registry)
        handled = environ.get(EXCEPTION_KEY)
        if handled is not None and obs.exception is None and obs.status >= 500:
            obs.fail(handled)
        environ.pop(OBSERVATION_KEY, None)

    def wrapped_body(self) -> Iterable[bytes]:
        body = self.body
        file_wrapper = self._environ.get("wsgi.file_wrapper")
        if (
            isinstance(file_wrapper, type)
            and isinstance(body, file_wrapper)
            and hasattr(body, "filelike")
        ):
            # Keep the server's sendfile() path: a new wrapper around an observed file.
            self.sent = True
            return file_wrapper(ObservedFile(body.filelike, self), getattr(body, "blksize", 8192))  # type: ignore[no-any-return]
        return self

    def __iter__(self) -> Iterator[bytes]:
        body = self.body
        if type(body) is list or type(body) is tuple:  # nothing of the app runs: no rebinding
            obs = self.obs
            for chunk in body:
                obs.bytes_out += len(chunk)
            self.sent = obs.bytes_out > 0
            return iter(body)  # the clock stops at close(), right after the server wrote it
        self.chunks = self._stream(body)
        return self.chunks

    def _stream(self, body: Iterable[bytes]) -> Generator[bytes, None, None]:
        """The app's chunks, counted, with the request's ids bound while the app makes them."""
        obs = self.obs
        tokens = _bind(obs)
        try:
            for chunk in body:
                if chunk:
                    self.sent = True
                    obs.bytes_out += len(chunk)
                yield chunk
            obs.complete()
        except GeneratorExit:  # the server stopped early (client gone); close() follows
            raise
        except BaseException as exc:
            self.failed(exc)
            raise
        finally:
            _unbind(tokens)

    def close(self) -> None:
        """Called by the server once: close the app's iterable (always), then finish."""
        obs = self.obs
        tokens = _bind(obs)
        try:
            if self.chunks is not None:
                self.chunks.close()
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        except BaseException as exc:
            if obs.exception is None:
                self.failed(exc)
            raise
        finally:
            if not obs.finished:
                if obs.status == 0:  # never started: what the server sends is a 500
                    obs.status = 500
                self.settle()
                obs.finish()
            _unbind(tokens)


class ObservedFile:
    """A file handed to the server's ``wsgi.file_wrapper`` whose ``close()`` finishes the
    observation; everything else (``fileno``, ``read``, ``seek``...) is the file's own."""

    def __init__(self, filelike: Any, response: ObservedResponse) -> None:
        self._filelike = filelike
        self._response = response
        try:
            remaining = os.fstat(filelike.fileno()).st_size - filelike.tell()
            response.obs.bytes_out += max(remaining, 0)
        except Exception:  # not a real file: counted as it is read
            self.read = self._counted_read

    def _counted_read(self, *args: Any) -> Any:
        data = self._filelike.read(*args)
        self._response.obs.bytes_out += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._filelike, name)

    def close(self) -> None:
        self._response.close()


def _bind(obs: RequestObservation) -> tuple[Any, Any] | None:
    if obs.request_id is None:
        return None
    trace = None if obs.trace_id is None else TRACE_ID.set(obs.trace_id)
    return REQUEST_ID.set(obs.request_id), trace


def _unbind(tokens: tuple[Any, Any] | None) -> None:
    if tokens is None:
        return
    try:
        REQUEST_ID.reset(tokens[0])
        if tokens[1] is not None:
            TRACE_ID.reset(tokens[1])
    except ValueError:  # finalised in another context: nothing of ours is bound there
        pass


class MetricsApp:
    """A WSGI app serving a registry (Prometheus text, or OpenMetrics when asked for)."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.registry = registry
        self._expected_authorization = basic_authorization(username, password)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if ROUTE_KEY not in environ:
            script_name, path_info = environ.get("SCRIPT_NAME", ""), environ.get("PATH_INFO", "")
            bounded = path_info if path_info in ("", "/", "/metrics") else "/{path}"
            environ[ROUTE_KEY] = (script_name + bounded) or "/"
        presented = environ.get("HTTP_AUTHORIZATION")
        if not authorized(
            self._expected_authorization,
            None if presented is None else presented.encode("latin-1", "replace"),
        ):
            headers = [(k.decode(), v.decode()) for k, v in UNAUTHORIZED_HEADERS]
            start_response("401 Unauthorized", headers)
            return [b"Unauthorized"]
        body, headers = render(
            self.registry, environ.get("HTTP_ACCEPT"), environ.get("HTTP_ACCEPT_ENCODING")
        )
        start_response("200 OK", headers)
        return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else body]


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
