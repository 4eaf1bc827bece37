"""Framework-neutral request observation, shared by the ASGI and WSGI adapters.

An :class:`HttpObserver` is built once per middleware and resolves everything it can up front;
per request, :meth:`HttpObserver.begin` returns a :class:`RequestObservation` that the adapter
fills in (status, bytes, route) and closes with :meth:`RequestObservation.finish` exactly once.
The hot path is a few dict lookups, metric updates on cached children and one log line.
"""

from __future__ import annotations

import contextvars
import logging
import random
import time
from typing import Any, Protocol, TypedDict

from prometheus_client import CollectorRegistry

from obs._internal import report_internal_error
from obs.config import Settings
from obs.context import REQUEST_ID, TRACE_ID
from obs.logs import EventEmitter
from obs.metrics import OVERFLOW_ROUTE, get_metrics
from obs.redaction import RedactSecrets
from obs.request_id import request_id_from, trace_id_from_traceparent
from obs.routes import DEFAULT_MAX_ROUTES, RouteLabels, method_label


class ActiveProfile(Protocol):
    """A profile running for one request (see :mod:`obs.profiling.request`)."""

    profile_id: str

    def stop(self) -> str | None: ...


class RequestProfiler(Protocol):
    """Decides which requests are profiled (see :mod:`obs.profiling.request`)."""

    enabled: bool

    def start(self, presented_token: str | None, request_id: str) -> ActiveProfile | None: ...

#: Status recorded when the client went away before the response completed (nginx's choice).
CLIENT_CLOSED_REQUEST = 499
#: Successful requests slower than this are always logged, whatever the sampling rate.
SLOW_REQUEST_SECONDS = 1.0
#: Distinct label sets of the duration histogram before new routes collapse into ``_overflow``.
DEFAULT_MAX_LABEL_SETS = 2000

_perf_counter = time.perf_counter
_METHOD_LABELS = {m: m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")}
#: Every key of the access line, each holding a value obs itself made (scalars; the query
#: already masked): the redaction step checks only the keys that come from elsewhere, like
#: bound context. ``exc_info`` is rendered by the exception step, as in every other line.
_ACCESS_KEYS = frozenset(
    {
        "event", "http_request_method", "http_route", "path", "status", "duration_ms",
        "bytes_in", "bytes_out", "request_id", "query", "client_addr", "user_agent",
        "trace_id", "profile", "error_type", "exc_info",
        "level", "logger", "service", "timestamp",
    }
)  # fmt: skip


def error_type_of(exc: BaseException) -> str:
    """The ``error_type`` label of an exception: its class name."""
    return type(exc).__qualname__


class ObserverOptions(TypedDict, total=False):
    """What both middlewares (``obs.asgi``, ``obs.wsgi``) accept, besides the app.

    - ``registry``: where metrics go (default: prometheus_client's global registry).
    - ``settings``: obs settings (default: read from ``OBS_*`` environment variables).
    - ``record_body_sizes``: also record the opt-in request/response body-size histograms.
    - ``max_routes``: distinct route templates before new ones are labelled ``_overflow``.
    - ``max_label_sets``: label sets of the duration histogram before the same happens.
    - ``access_log``: override ``OBS_ACCESS_LOG`` (``False`` for metrics only).
    - ``request_ids``: read/generate ``X-Request-ID``, bind it for logging and attach it to the
      latency histogram as an exemplar (``False`` for bare metrics).
    - ``profiler``: decides which requests are profiled (default: from ``OBS_PROFILE_TOKEN``).
    """

    registry: CollectorRegistry | None
    settings: Settings | None
    record_body_sizes: bool
    max_routes: int
    max_label_sets: int
    access_log: bool | None
    request_ids: bool
    profiler: RequestProfiler | None


class HttpObserver:
    """Everything a middleware needs to observe requests, resolved once at start-up."""

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        settings: Settings | None = None,
        record_body_sizes: bool = False,
        max_routes: int = DEFAULT_MAX_ROUTES,
        max_label_sets: int = DEFAULT_MAX_LABEL_SETS,
        access_log: bool | None = None,
        request_ids: bool = True,
        profiler: RequestProfiler | None = None,
    ) -> None:
        self.request_ids = request_ids
        self.record_body_sizes = record_body_sizes
        self.settings = settings if settings is not None else Settings.from_env()
        self.registry = registry
        metrics = get_metrics(registry)
        self._duration = metrics.request_duration
        self._active = metrics.active_requests
        self._exceptions = metrics.exceptions
        self._request_size = metrics.request_body_size if record_body_sizes else None
        self._response_size = metrics.response_body_size if record_body_sizes else None
        metrics.build_info.labels(self.settings.service_name, self.settings.service_version).set(1)
        self._route_labels = RouteLabels(max_routes)
        self._admitted_routes = self._route_labels.admitted  # read-only view for the hot path
        self._max_label_sets = max_label_sets
        self._duration_children: dict[tuple[str, str, int, str], Any] = {}
        self._active_children: dict[str, Any] = {}
        self.access_log = self.settings.access_log if access_log is None else access_log
        self.exclude_paths = frozenset(self.settings.exclude_paths)
        self.sample_rate = self.settings.access_log_sample
        self._log = EventEmitter("obs.access", _ACCESS_KEYS)
        self._redactor = RedactSecrets(self.settings.redact_keys)
        if profiler is None and self.settings.profile_token:
            # Imported only when profiling is on: pyinstrument stays out of ordinary start-ups.
            from obs.profiling.request import RequestProfiler as Profiler

            profiler = Profiler.from_settings(self.settings)
        self.profiler = profiler if profiler is not None and profiler.enabled else None
        self.slow_profiler: Any = None  # issue 20: tail-kept profiles, imported only when on
        if self.settings.slow_profiles:
            from obs.profiling.slow import SlowRequestProfiler

            self.slow_profiler = SlowRequestProfiler.shared(self.settings)

    def active_child(self, method: str) -> Any:
        """The active-requests gauge child of *method* (a method label)."""
        child = self._active_children.get(method)
        if child is None:
            child = self._active_children[method] = self._active.labels(method)
        return child

    def record(self, obs: RequestObservation, duration: float) -> None:
        """Update the metrics of a finished request."""
        status = obs.status
        error_type = obs.error_type
        if not error_type and status >= 500:
            error_type = str(status)
        route = obs.route
        if route is None or route not in self._admitted_routes:
            route = self._route_labels(route)
        obs.route_label = route
        key = (obs.method, route, status, error_type)
        child = self._duration_children.get(key)
        if child is None:
            child = self._new_duration_child(key)
        request_id = obs.request_id
        # OpenMetrics caps an exemplar's labels at 128 characters, names included; one over
        # the cap would make Prometheus reject the whole scrape.
        if request_id is None or len(request_id) > 118:
            child.observe(duration)
        elif obs.trace_id is None or len(request_id) > 78:
            child.observe(duration, {"request_id": request_id})
        else:
            child.observe(duration, {"request_id": request_id, "trace_id": obs.trace_id})
        if obs.exception is not None:
            self._exceptions.labels(route, error_type).inc()
        if self._request_size is not None and self._response_size is not None:
            labels = (obs.method, route, str(status))
            self._request_size.labels(*labels).observe(obs.bytes_in)
            self._response_size.labels(*labels).observe(obs.bytes_out)

    def _new_duration_child(self, key: tuple[str, str, int, str]) -> Any:
        if len(self._duration_children) >= self._max_label_sets:
            method, _, status, error_type = key
            key = (method, OVERFLOW_ROUTE, status, error_type)
            child = self._duration_children.get(key)
            if child is not None:
                return child
        method, route, status, error_type = key
        child = self._duration.labels(method, route, str(status), error_type)
        self._duration_children[key] = child
        return child

    def log(self, obs: RequestObservation, duration: float) -> None:
        """Write the access-log line of a finished request, unless excluded or sampled out."""
        if obs.path in self.exclude_paths:
            return
        status = obs.status
        if (
            self.sample_rate < 1.0
            and status < 400
            and duration < SLOW_REQUEST_SECONDS
            and random.random() >= self.sample_rate
        ):
            return
        fields: dict[str, Any] = {
            "event": "request",
            "http_request_method": obs.raw_method,
            "http_route": obs.route_label or self._route_labels(obs.route),
            "path": obs.path,
            "status": status,
            "duration_ms": round(duration * 1_000_000.0) / 1000,  # 3 decimals, cheaper
            "bytes_in": obs.bytes_in,
            "bytes_out": obs.bytes_out,
        }
        if obs.request_id is not None:
            fields["request_id"] = obs.request_id
        if obs.query:
            fields["query"] = self.redact_query(obs.query)
        if obs.client is not None:
            fields["client_addr"] = obs.client
        if obs.user_agent is not None:
            fields["user_agent"] = obs.user_agent
        if obs.trace_id is not None:
            fields["trace_id"] = obs.trace_id
        if obs.profile_path is not None:
            fields["profile"] = obs.profile_path
        if obs.error_type:
            fields["error_type"] = obs.error_type
        if obs.exception is not None:
            fields["exc_info"] = obs.exception
        if status >= 500:
            self._log.emit("error", logging.ERROR, fields)
        elif status >= 400:
            self._log.emit("warning", logging.WARNING, fields)
        else:
            self._log.emit("info", logging.INFO, fields)

    def redact_query(self, query: str) -> str:
        """The query string with the values of secret parameters masked."""
        parts = query.split("&")
        for i, part in enumerate(parts):
            name, sep, _ = part.partition("=")
            if sep and self._redactor.is_secret(name):
                parts[i] = f"{name}={self._redactor.mask}"
        return "&".join(parts)


class RequestObservation:
    """The state of one request as an adapter sees it; closed by :meth:`finish` exactly once.

    Made when the request arrives: it binds the request's ids and counts it as active.
    """

    __slots__ = (
        "active", "bytes_in", "bytes_out", "client", "end", "error_type", "exception",
        "finished", "id_token", "method", "observer", "path", "profile", "profile_path",
        "query", "raw_method", "request_id", "route", "route_label", "slow_profile", "start",
        "status", "trace_id", "trace_token", "user_agent",
    )  # fmt: skip

    def __init__(
        self,
        observer: HttpObserver,
        method: str,
        path: str,
        raw_request_id: bytes | None = None,
        traceparent: bytes | None = None,
    ) -> None:
        self.start = _perf_counter()
        self.observer = observer
        self.raw_method = method
        self.method = label = _METHOD_LABELS.get(method) or method_label(method)
        self.path = path
        try:
            active = observer._active_children.get(label) or observer.active_child(label)
            active.inc()
            self.active = active
        except Exception as exc:
            self.active = None
            report_internal_error("metrics", exc, observer.registry)
        self.status = self.bytes_in = self.bytes_out = 0
        self.end = 0.0
        self.route: str | None = None
        self.route_label = ""  # the route as the metrics labelled it
        self.error_type = self.query = ""
        self.exception: BaseException | None = None
        self.finished = False
        self.client: str | None = None
        self.user_agent: str | None = None
        self.profile: ActiveProfile | None = None
        self.profile_path: str | None = None
        self.request_id: str | None = None
        self.trace_id: str | None = None
        self.id_token: contextvars.Token[Any] | None = None
        self.trace_token: contextvars.Token[Any] | None = None
        slow = observer.slow_profiler
        self.slow_profile = None if slow is None else slow.begin()
        if not observer.request_ids:
            return
        self.request_id = request_id_from(raw_request_id)
        self.id_token = REQUEST_ID.set(self.request_id)
        if traceparent is not None:
            self.trace_id = trace_id_from_traceparent(traceparent)
            if self.trace_id is not None:
                self.trace_token = TRACE_ID.set(self.trace_id)

    def start_profile(self, presented_token: str | None) -> str | None:
        """Start an on-demand profile if the token allows it; return its id for the header."""
        profiler = self.observer.profiler
        if profiler is None or presented_token is None or self.request_id is None:
            return None
        self.profile = profiler.start(presented_token, self.request_id)
        return None if self.profile is None else self.profile.profile_id

    def fail(self, exc: BaseException) -> None:
        """Note that the handler raised *exc* (before or after the response started)."""
        self.exception = exc
        self.error_type = error_type_of(exc)
        if not self.status:
            self.status = 500

    def cancel(self, exc: BaseException) -> None:
        """Note that the request was cancelled or the client went away."""
        self.error_type = error_type_of(exc)
        if not self.status:
            self.status = CLIENT_CLOSED_REQUEST

    def complete(self) -> bool:
        """The last body byte was sent: stop the clock; return whether to finish right away.

        A 5xx is finished later, when the app returns or raises, so that an exception that
        follows the error response (Starlette sends its 500, then re-raises) is recorded.
        """
        self.end = _perf_counter()
        return self.status < 500

    def finish(self) -> None:
        """Record metrics and write the access line (the clock stops at :meth:`complete`, or
        now). Idempotent; never raises."""
        if self.finished:
            return
        self.finished = True
        duration = (self.end or _perf_counter()) - self.start
        if self.raw_method == "HEAD":
            self.bytes_out = 0  # servers drop a HEAD response's body; nothing was sent
        observer = self.observer
        try:
            if self.active is not None:
                self.active.dec()
            if self.profile is not None:
                self.profile_path = self.profile.stop()
            observer.record(self, duration)
            if self.slow_profile is not None:
                slow_path = self.slow_profile.finish(duration, self.route_label, self.request_id)
                self.profile_path = self.profile_path or slow_path
        except Exception as exc:
            report_internal_error("metrics", exc, observer.registry)
        if observer.access_log:
            try:
                observer.log(self, duration)
            except Exception as exc:
                report_internal_error("access log", exc, observer.registry)

    def unbind(self) -> None:
        """Reset the context variables bound for this request (same task or thread only)."""
        if self.id_token is None:
            return
        try:
            REQUEST_ID.reset(self.id_token)
            if self.trace_token is not None:
                TRACE_ID.reset(self.trace_token)
        except ValueError:  # a token from another context: nothing of ours is bound here
            pass
