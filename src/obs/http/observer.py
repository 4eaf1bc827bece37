"""What a middleware resolves once, at start-up: settings, metric children, label bounds and the
access log. Per request, adapters make a :class:`~obs.http.observation.RequestObservation`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypedDict, TypeVar, Unpack

from prometheus_client import CollectorRegistry

from obs.config import PREFIX_WILDCARD, Settings
from obs.http.access_line import AccessLog
from obs.http.ids import request_id_maker, request_id_reader
from obs.http.labels import DEFAULT_MAX_ROUTES, LabelSets, RouteLabels, status_label
from obs.http.options import HeaderLabel, check_observer_options, check_route_getter
from obs.http.otel import span_lookup
from obs.logs.redaction import RedactSecrets
from obs.metrics import DURATION_BUCKETS, EXEMPLAR_MAX_CHARS, get_metrics, say_build_info
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


#: Up, down, and the gauge child: see :meth:`HttpObserver.active_steps`.
ActiveSteps = tuple[Callable[[], object], Callable[[], object], Any]


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


class SlowProfileHandle(Protocol):
    """The samples of one request in flight (see :mod:`obs.profiling.slow`)."""

    def finish(self, duration: float, route: str, request_id: str | None) -> str | None: ...


class SlowProfiler(Protocol):
    """Samples every request in flight; keeps the slow ones (:mod:`obs.profiling.slow`)."""

    def begin(self) -> SlowProfileHandle | None: ...


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
    - ``metrics_exclude_paths``: paths neither counted nor gauged (``OBS_METRICS_EXCLUDE_PATHS``,
      default ``/metrics``); ``exclude_paths``: paths not access-logged (``OBS_EXCLUDE_PATHS``).
      An entry ending in ``/*`` is a prefix (``/static/*``), any other matches exactly.
    - ``duration_buckets``: the duration histogram's boundaries in seconds
      (``OBS_DURATION_BUCKETS``, default OpenTelemetry's).
    - ``request_id_header``: where the id is read and returned (``OBS_REQUEST_ID_HEADER``,
      default ``X-Request-ID``); ``request_id_generator``: makes new ids;
      ``request_id_validator``: whether to keep an incoming id (obs's safety rule applies first).
    - ``extra_labels``: ``{"tenant": from_header("X-Tenant", allowed=[...])}``, labels of the
      duration histogram read from request headers, bounded by their allow-lists.
    """

    registry: CollectorRegistry | None
    settings: Settings | None
    record_body_sizes: bool
    max_routes: int
    max_label_sets: int
    access_log: bool | None
    request_ids: bool
    profiler: OnDemandProfiler | None
    metrics_exclude_paths: Iterable[str] | None
    exclude_paths: Iterable[str] | None
    duration_buckets: Sequence[float] | None
    request_id_header: str | None
    request_id_generator: Callable[[], str] | None
    request_id_validator: Callable[[str], bool] | None
    extra_labels: Mapping[str, HeaderLabel] | None


def split_paths(paths: Iterable[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    """Exact paths and prefixes (entries ending in ``/*``, kept without the ``*``)."""
    exact = frozenset(p for p in paths if not p.endswith(PREFIX_WILDCARD))
    prefixes = tuple(p[: -len(PREFIX_WILDCARD)] for p in paths if p.endswith(PREFIX_WILDCARD))
    return exact, prefixes


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
        metrics_exclude_paths: Iterable[str] | None = None,
        exclude_paths: Iterable[str] | None = None,
        duration_buckets: Sequence[float] | None = None,
        request_id_header: str | None = None,
        request_id_generator: Callable[[], str] | None = None,
        request_id_validator: Callable[[str], bool] | None = None,
        extra_labels: Mapping[str, HeaderLabel] | None = None,
    ) -> None:
        check_observer_options(
            {
                "registry": registry, "settings": settings, "max_routes": max_routes,
                "max_label_sets": max_label_sets, "record_body_sizes": record_body_sizes,
                "request_ids": request_ids, "access_log": access_log, "profiler": profiler,
                "metrics_exclude_paths": metrics_exclude_paths, "exclude_paths": exclude_paths,
                "duration_buckets": duration_buckets, "request_id_header": request_id_header,
                "request_id_generator": request_id_generator,
                "request_id_validator": request_id_validator, "extra_labels": extra_labels,
            }
        )  # fmt: skip
        self.request_ids = request_ids
        self.record_body_sizes = record_body_sizes
        settings_given = settings is not None
        self.settings = settings if settings is not None else Settings.from_env()
        self.registry = registry
        settings = self.settings
        unmeasured = settings.metrics_exclude_paths
        if metrics_exclude_paths is not None:
            unmeasured = tuple(metrics_exclude_paths)
        #: Paths neither counted nor gauged: looked up once per request, at its start.
        self.unmeasured_paths, self.unmeasured_prefixes = split_paths(unmeasured)
        buckets = settings.duration_buckets or DURATION_BUCKETS
        if duration_buckets is not None:
            buckets = tuple(float(b) for b in duration_buckets if b != float("inf"))
        self.header_labels: tuple[tuple[str, HeaderLabel], ...] = tuple(
            (extra_labels or {}).items()
        )
        label_names = tuple(name for name, _ in self.header_labels)
        #: The extra labels' values of a request without their headers (made once).
        self.other_labels = tuple(source.value(None) for _, source in self.header_labels)
        metrics = get_metrics(registry)
        self._duration = metrics.duration_histogram(buckets, label_names)
        if metrics.multiprocess:  # "served for every live worker", from its start
            from obs.prometheus.multiprocess import start_side_file_in_worker

            start_side_file_in_worker()
        #: The request-id header as written (WSGI responses), lower case (ASGI) and as a CGI
        #: environ key (``HTTP_X_REQUEST_ID``).
        self.request_id_header = request_id_header or settings.request_id_header
        self.request_id_header_bytes = self.request_id_header.lower().encode("ascii")
        self.request_id_environ_key = "HTTP_" + self.request_id_header.upper().replace("-", "_")
        #: Reads a request's incoming id (bytes), keeping it only if safe (and valid)...
        self.request_id_from = request_id_reader(request_id_generator, request_id_validator)
        #: ...and makes one for a request without: called directly when there is no header, the
        #: common case (bench/instructions.py: a call fewer, about 400 instructions).
        self.new_request_id = request_id_maker(request_id_generator)
        #: Where OpenTelemetry's span in progress is found (``None``: api not installed).
        self.span_lookup = span_lookup() if request_ids else None
        if self.header_labels:
            self.record = self._record_with_labels  # type: ignore[method-assign]
        self._active = metrics.active_requests
        self._exceptions = metrics.exceptions
        self._request_size = metrics.request_body_size if record_body_sizes else None
        self._response_size = metrics.response_body_size if record_body_sizes else None
        try:
            say_build_info(
                registry,
                settings.service_name,
                settings.service_version,
                follow=not settings_given,  # configure_logging's service name, before or after
            )
        except Exception as exc:  # a full multiprocess directory must not stop the app booting
            report_internal_error("metrics", exc, registry)
        known = _recorded_label_sets() if metrics.multiprocess else frozenset()
        self.route_labels = RouteLabels(max_routes, frozenset(k[1] for k in known))
        self.admitted_routes = self.route_labels.admitted  # read-only view for the hot path
        self._label_sets = LabelSets(max_label_sets, known)
        self._duration_children: dict[tuple[Any, ...], Any] = {}
        self._bounded_children: dict[tuple[Any, ...], Any] = {}
        #: Method label -> how its requests step the active-requests gauge (:meth:`active_steps`).
        self.active_children: dict[str, ActiveSteps] = {}
        self.access_log: AccessLog | None = None
        if self.settings.access_log if access_log is None else access_log:
            unlogged = settings.exclude_paths if exclude_paths is None else tuple(exclude_paths)
            exact, prefixes = split_paths(unlogged)
            self.access_log = AccessLog(
                RedactSecrets.from_settings(self.settings),
                exact,
                self.settings.access_log_sample,
                exclude_prefixes=prefixes,
            )
        if profiler is None and self.settings.profile_token:
            # Imported only when profiling is on: pyinstrument stays out of ordinary start-ups.
            from obs.profiling.request import RequestProfiler

            profiler = RequestProfiler.from_settings(self.settings, self.registry)
        self.profiler = profiler if profiler is not None and profiler.enabled else None
        #: Tail-kept profiles of slow requests (``OBS_SLOW_PROFILES``), imported only when on.
        self.slow_profiler: SlowProfiler | None = None
        if self.settings.slow_profiles:
            from obs.profiling.slow import SlowRequestProfiler

            self.slow_profiler = SlowRequestProfiler.shared(self.settings)

    def active_steps(self, method: str) -> ActiveSteps:
        """How a request of *method* (a method label) steps the active-requests gauge: up, down
        (C callables where the gauge has them, see ``_GaugeChild.unit_steps``) and the child."""
        steps = self.active_children.get(method)
        if steps is None:
            child = self._active.labels(method)
            unit_steps = getattr(child, "unit_steps", None)
            up, down = (child.inc, child.dec) if unit_steps is None else unit_steps()
            steps = self.active_children[method] = (up, down, child)
        return steps

    def route_label(self, route: str | None) -> str:
        """The ``http_route`` label of *route* (a template, or ``None`` when nothing matched)."""
        if route is None or route not in self.admitted_routes:
            return self.route_labels(route)
        return route

    def record(
        self, observation: RequestObservation, route: str, duration: float, child: Any = None
    ) -> None:
        """Update the metrics of a finished request, labelled *route* (*child*: its duration
        histogram child when the caller looked it up, as :meth:`_record_with_labels` does)."""
        status = observation.status
        error_type = observation.error_type
        if not error_type and status >= 500:
            error_type = status_label(status)
        if child is None:
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
            labels = (observation.method, route, status_label(status))
            self._request_size.labels(*labels).observe(observation.bytes_in)
            self._response_size.labels(*labels).observe(observation.bytes_out)

    def writes_access_line(self, path: str) -> bool:
        """Whether requests to *path* get an access line (so it carries their traceback)."""
        return self.access_log is not None and not self.access_log.excludes(path)

    def count_exception(self, route: str, error_type: str) -> None:
        """Count an exception of a request already recorded (see ``fail_late``)."""
        self._exceptions.labels(route, error_type).inc()

    def header_label_values(self, header: Callable[[str], str | None]) -> tuple[str, ...]:
        """The extra label values of a request whose header *name* (lower case) is
        ``header(name)``."""
        return tuple(source.value(header(source.header)) for _, source in self.header_labels)

    def _record_with_labels(
        self, observation: RequestObservation, route: str, duration: float, child: Any = None
    ) -> None:
        """:meth:`record` for a duration histogram with extra labels (chosen at start-up): the
        child is looked up with the request's extra label values, the rest is :meth:`record`."""
        status = observation.status
        error_type = observation.error_type
        if not error_type and status >= 500:
            error_type = status_label(status)
        labels = observation.labels or self.other_labels
        key = (observation.method, route, status, error_type, *labels)
        child = child or self._duration_children.get(key)
        if child is None:
            # Bounded as without extra labels (labels.LabelSets), the extra values kept.
            bounded = self._label_sets.admit(
                (observation.method, route, status_label(status), error_type),
                self._bounded_children,
            )
            full = (*bounded, *labels)
            child = self._bounded_children.get(full)
            if child is None:
                child = self._bounded_children[full] = self._duration.labels(*full)
            if len(self._duration_children) < 4 * self._label_sets.max_label_sets:
                self._duration_children[key] = child
        HttpObserver.record(self, observation, route, duration, child)

    def _new_duration_child(self, key: tuple[str, str, int, str]) -> Any:
        # Keyed by the raw status on the hot path; bounded (labels.LabelSets) on the way in.
        method, route, status, error_type = key
        labels = (method, route, status_label(status), error_type)
        labels = self._label_sets.admit(labels, self._bounded_children)
        child = self._bounded_children.get(labels)
        if child is None:
            child = self._bounded_children[labels] = self._duration.labels(*labels)
        if len(self._duration_children) < 4 * self._label_sets.max_label_sets:
            self._duration_children[key] = child  # the hot-path cache stays bounded too
        return child


def _recorded_label_sets() -> frozenset[tuple[str, ...]]:
    """The duration histogram's label sets that the server's processes recorded so far."""
    from obs.metrics import REQUEST_DURATION, spec
    from obs.prometheus.multiprocess import recorded_label_sets

    return frozenset(recorded_label_sets(REQUEST_DURATION, spec(REQUEST_DURATION).labels))


_App = TypeVar("_App")
_Getter = TypeVar("_Getter", bound=Callable[..., Any])


class HttpMiddleware(Generic[_App, _Getter]):
    """What :class:`obs.asgi.ObservabilityMiddleware` and :class:`obs.wsgi.ObservabilityMiddleware`
    share: the app, checked; its :class:`HttpObserver`; the route getter.

    Options (``registry``, ``settings``, ``record_body_sizes``, ``max_routes``, ``access_log``,
    ``request_ids``, ``profiler``...) are those of :class:`ObserverOptions`; *route_getter*
    reads the route template from the request (an ASGI scope, a WSGI environ) after the app ran,
    the adapter's own when ``None``.
    """

    #: Raises a :class:`TypeError` that says what to pass when the app cannot be one.
    _check_app: Callable[[Any], None]
    #: The adapter's route getter when none is given.
    _default_route_getter: _Getter

    def __init__(
        self,
        app: _App,
        *,
        route_getter: _Getter | None = None,
        **options: Unpack[ObserverOptions],
    ) -> None:
        self._check_app(app)
        check_route_getter(route_getter)
        self.app = app
        self.observer = HttpObserver(**options)
        default = self._default_route_getter
        self.route_getter: _Getter = default if route_getter is None else route_getter
        self._prepare()

    def _prepare(self) -> None:
        """Resolve, once, what the adapter's requests need of its observer."""
