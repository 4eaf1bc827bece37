"""WSGI middleware: request ids, one access line and RED metrics per request.

    application = ObservabilityMiddleware(application)     # any WSGI app
    obs.integrations.flask.instrument(app)                 # Flask: adds route templates
    MIDDLEWARE = ["obs.django.ObservabilityMiddleware", ...]  # Django

The same behaviour as :mod:`obs.asgi`, through the same core (:mod:`obs.http`). A request is
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

from obs.http.describe import cgi_path, describe_cgi, header_bytes
from obs.http.observation import RequestObservation
from obs.http.observer import HttpObserver, ObserverOptions
from obs.http.options import check_route_getter, check_wsgi_app
from obs.prometheus.exposition import (
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
#: Environ key holding the request's :class:`~obs.http.observation.RequestObservation` while it runs.
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
    ``request_ids``, ``profiler``) are those of :class:`obs.http.observer.ObserverOptions`;
    *route_getter* reads the route template from the environ after the app ran.
    """

    def __init__(
        self,
        app: WSGIApp,
        *,
        route_getter: RouteGetter | None = None,
        **options: Unpack[ObserverOptions],
    ) -> None:
        check_wsgi_app(app)
        check_route_getter(route_getter)
        self.app = app
        self.observer = HttpObserver(**options)
        self.route_getter = route_template if route_getter is None else route_getter
        self._request_id_key = self.observer.request_id_environ_key
        self._label_keys = {
            source.header: "HTTP_" + source.header.upper().replace("-", "_")
            for _, source in self.observer.header_labels
        }

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        get = environ.get
        script_name: str = get("SCRIPT_NAME", "")
        observation = RequestObservation(
            self.observer,
            environ["REQUEST_METHOD"],
            cgi_path(environ),
            header_bytes(get(self._request_id_key)),
            header_bytes(get("HTTP_TRACEPARENT")),
        )
        if self._label_keys:
            observation.labels = self.observer.header_label_values(
                lambda name: get(self._label_keys[name])
            )
        response = ObservedResponse(
            observation, start_response, environ, self.route_getter, script_name
        )
        try:
            if self.observer.access_log is not None:
                describe_cgi(observation, environ)
            environ[OBSERVATION_KEY] = observation
            if observation.request_id is not None:
                response.extra_headers.append(
                    (self.observer.request_id_header, observation.request_id)
                )
                token = get("HTTP_X_OBS_PROFILE")
                if token is not None:
                    profile_id = observation.start_profile(token)
                    if profile_id is not None:
                        response.extra_headers.append(("X-Obs-Profile-Id", profile_id))
            response.body = self.app(environ, response.start_response)
        except BaseException as exc:
            response.failed(exc)
            response.settle()
            observation.finish()
            raise
        finally:
            observation.unbind()
        return response.wrapped_body()


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
        "observation",
        "sent",
    )

    def __init__(
        self,
        observation: RequestObservation,
        start_response: StartResponse,
        environ: Environ,
        route_getter: RouteGetter,
        script_name: str,
    ) -> None:
        self.observation = observation
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
            self.observation.status = int(status[:3])
        except ValueError:
            self.observation.status = 500
        self._server_write = write
        return self.write

    def write(self, data: bytes) -> object:
        """The legacy ``write()`` callable of PEP 3333, counted."""
        if data:
            self.sent = True
            self.observation.bytes_out += len(data)
        assert self._server_write is not None
        return self._server_write(data)

    def failed(self, exc: BaseException) -> None:
        observation = self.observation
        if not self.sent:
            observation.status = 0  # nothing went out: the server answers 500
        if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
            observation.cancel(exc)
        else:
            observation.fail(exc)

    def settle(self) -> None:
        """Read the route and any exception the framework handled; never raises."""
        observation = self.observation
        environ = self._environ
        observation.read_route(self._route_getter, environ, self._script_name)
        handled = environ.get(EXCEPTION_KEY)
        if handled is not None and observation.exception is None and observation.status >= 500:
            observation.fail(handled)
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
            observation = self.observation
            for chunk in body:
                observation.bytes_out += len(chunk)
            self.sent = observation.bytes_out > 0
            return iter(body)  # the clock stops at close(), right after the server wrote it
        self.chunks = self._stream(body)
        return self.chunks

    def _stream(self, body: Iterable[bytes]) -> Generator[bytes, None, None]:
        """The app's chunks, counted, with the request's ids bound while the app makes them."""
        observation = self.observation
        tokens = observation.bind()
        try:
            for chunk in body:
                if chunk:
                    self.sent = True
                    observation.bytes_out += len(chunk)
                yield chunk
            observation.complete()
        except GeneratorExit:  # the server stopped early (client gone); close() follows
            raise
        except BaseException as exc:
            self.failed(exc)
            raise
        finally:
            observation.restore(tokens)

    def close(self) -> None:
        """Called by the server once: close the app's iterable (always), then finish."""
        observation = self.observation
        tokens = observation.bind()
        try:
            if self.chunks is not None:
                self.chunks.close()
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        except BaseException as exc:
            if observation.exception is None:
                self.failed(exc)
            raise
        finally:
            if not observation.finished:
                if observation.status == 0:  # never started: what the server sends is a 500
                    observation.status = 500
                self.settle()
                observation.finish()
            observation.restore(tokens)


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
