"""What a middleware resolves once, at start-up: settings, metric children, label bounds and the
access log. Per request, adapters make a :class:`~obs.http.observation.RequestObservation`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypedDict

from prometheus_client import CollectorRegistry

from obs.config import Settings
from obs.http.access_line import AccessLog
from obs.http.labels import DEFAULT_MAX_ROUTES, RouteLabels
from obs.logs.redaction import RedactSecrets
from obs.metrics import EXEMPLAR_MAX_CHARS, OVERFLOW_ROUTE, get_metrics
from obs.selfreport import report_internal_error

if TYPE_CHECKING:
    from obs.http.observation import RequestObservation

#: Distinct label sets of the duration histogram before new routes collapse into ``_overflow``.
DEFAULT_MAX_LABEL_SETS = 2000
#: OpenMetrics caps an exemplar's label names and values at 128 characters together; one over
#: would make Prometheus reject the whole scrape. The longest request id that fits alone...
MAX_EXEMPLAR_REQUEST_ID = EXEMPLAR_MAX_CHARS - len("request_id")
#: ...and beside a W3C trace id (32 hex digits).
MAX_EXEMPLAR_REQUEST_ID_WITH_TRACE = MAX_EXEMPLAR_REQUEST_ID - len("trace_id") - 32


class RunningProfile(Protocol):
    """A profile running for one request (see :mod:`obs.profiling.request`)."""

    profile_id: str

    def stop(self) -> str | None: ...


class OnDemandProfiler(Protocol):
    """Decides which requests are profiled (:class:`obs.profiling.request.RequestProfiler`)."""

    enabled: bool

    def start(
        self, presented_token: str | None, request_id: str, client: str | None = None
    ) -> RunningProfile | None: ...


class ObserverOptions(TypedDict, total=False):
    """What every middleware (``obs.asgi``, ``obs.wsgi``, ``obs.django``) accepts, besides the app.

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
    profiler: OnDemandProfiler | None


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
        profiler: OnDemandProfiler | None = None,
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
        try:
            build_info = metrics.build_info.labels(
                self.settings.service_name, self.settings.service_version
            )
            build_info.set(1)
        except Exception as exc:  # a full multiprocess directory must not stop the app booting
            report_internal_error("metrics", exc, registry)
        self.route_labels = RouteLabels(max_routes)
        self._admitted_routes = self.route_labels.admitted  # read-only view for the hot path
        self._max_label_sets = max_label_sets
        self._duration_children: dict[tuple[str, str, int, str], Any] = {}
        self._active_children: dict[str, Any] = {}
        self.access_log: AccessLog | None = None
        if self.settings.access_log if access_log is None else access_log:
            self.access_log = AccessLog(
                RedactSecrets(self.settings.redact_keys),
                frozenset(self.settings.exclude_paths),
                self.settings.access_log_sample,
            )
        if profiler is None and self.settings.profile_token:
            # Imported only when profiling is on: pyinstrument stays out of ordinary start-ups.
            from obs.profiling.request import RequestProfiler

            profiler = RequestProfiler.from_settings(self.settings, self.registry)
        self.profiler = profiler if profiler is not None and profiler.enabled else None

    def active_child(self, method: str) -> Any:
        """The active-requests gauge child of *method* (a method label)."""
        child = self._active_children.get(method)
        if child is None:
            child = self._active_children[method] = self._active.labels(method)
        return child

    def route_label(self, route: str | None) -> str:
        """The ``http_route`` label of *route* (a template, or ``None`` when nothing matched)."""
        if route is None or route not in self._admitted_routes:
            return self.route_labels(route)
        return route

    def record(self, observation: RequestObservation, route: str, duration: float) -> None:
        """Update the metrics of a finished request, labelled *route*."""
        status = observation.status
        error_type = observation.error_type
        if not error_type and status >= 500:
            error_type = str(status)
        key = (observation.method, route, status, error_type)
        child = self._duration_children.get(key)
        if child is None:
            child = self._new_duration_child(key)
        request_id = observation.request_id
        if request_id is None or len(request_id) > MAX_EXEMPLAR_REQUEST_ID:
            child.observe(duration)
        elif observation.trace_id is None or len(request_id) > MAX_EXEMPLAR_REQUEST_ID_WITH_TRACE:
            child.observe(duration, {"request_id": request_id})
        else:
            child.observe(duration, {"request_id": request_id, "trace_id": observation.trace_id})
        if observation.exception is not None:
            self._exceptions.labels(route, error_type).inc()
        if self._request_size is not None and self._response_size is not None:
            labels = (observation.method, route, str(status))
            self._request_size.labels(*labels).observe(observation.bytes_in)
            self._response_size.labels(*labels).observe(observation.bytes_out)

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
