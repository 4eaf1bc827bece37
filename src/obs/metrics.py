"""The metric catalogue: every name, label and bucket obs exports, in one place.

Names and labels follow the OpenTelemetry HTTP semantic conventions as the OpenTelemetry
Prometheus exporter renders them, so dashboards built from this module also work for services
instrumented with OpenTelemetry. Dashboards import the constants below instead of repeating strings.
"""

from __future__ import annotations

import os
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from obs import selfreport
from obs.exceptions import ConfigError
from obs.prometheus.families import CounterFamily, GaugeFamily, HistogramFamily

# Label names.
METHOD = "http_request_method"
ROUTE = "http_route"
STATUS = "http_response_status_code"
ERROR_TYPE = "error_type"
LEVEL = "level"
SERVICE = "service"
VERSION = "version"

# Metric names (as exposed; counters carry their ``_total`` suffix).
REQUEST_DURATION = "http_server_request_duration_seconds"
ACTIVE_REQUESTS = "http_server_active_requests"
REQUEST_BODY_SIZE = "http_server_request_body_size_bytes"
RESPONSE_BODY_SIZE = "http_server_response_body_size_bytes"
EXCEPTIONS = "http_server_exceptions_total"
LOG_EVENTS = "obs_log_events_total"
BUILD_INFO = "obs_build_info"
INTERNAL_ERRORS = "obs_internal_errors_total"
PROFILE_TOKEN_REJECTIONS = "obs_profile_token_rejections_total"

#: Duration buckets from the OpenTelemetry HTTP semantic conventions, in seconds.
DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
#: Body-size buckets in bytes: 100 B to 100 MB by powers of ten.
SIZE_BUCKETS: tuple[float, ...] = (100.0, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8)

#: OpenMetrics: an exemplar's label names and values together are at most this many characters.
EXEMPLAR_MAX_CHARS = 128

#: The value of ``http_route`` for requests no route matched.
UNMATCHED_ROUTE = "_unmatched"
#: The value of ``http_route`` once the cap on distinct routes is reached.
OVERFLOW_ROUTE = "_overflow"
#: The value of ``http_request_method`` for methods outside the standard set.
OTHER_METHOD = "_OTHER"
#: Standard methods kept as they are (RFC 9110 plus PATCH).
KNOWN_METHODS: frozenset[str] = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)

Kind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One row of the catalogue: what a metric is called, measures and is labelled by."""

    name: str
    kind: Kind
    labels: tuple[str, ...]
    help: str


CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec(
        REQUEST_DURATION,
        "histogram",
        (METHOD, ROUTE, STATUS, ERROR_TYPE),
        "Duration of HTTP server requests, until the last body byte was sent.",
    ),
    MetricSpec(ACTIVE_REQUESTS, "gauge", (METHOD,), "Number of HTTP server requests in flight."),
    MetricSpec(
        REQUEST_BODY_SIZE,
        "histogram",
        (METHOD, ROUTE, STATUS),
        "Bytes of request body actually received (opt-in).",
    ),
    MetricSpec(
        RESPONSE_BODY_SIZE,
        "histogram",
        (METHOD, ROUTE, STATUS),
        "Bytes of response body actually sent (opt-in).",
    ),
    MetricSpec(
        EXCEPTIONS,
        "counter",
        (ROUTE, ERROR_TYPE),
        "HTTP server requests whose handler raised an exception.",
    ),
    MetricSpec(LOG_EVENTS, "counter", (LEVEL,), "Log events emitted, by level."),
    MetricSpec(BUILD_INFO, "gauge", (SERVICE, VERSION), "Always 1; labels name the service."),
    MetricSpec(
        INTERNAL_ERRORS,
        "counter",
        ("component",),
        "Failures inside obs itself (the observed request was still served).",
    ),
    MetricSpec(
        PROFILE_TOKEN_REJECTIONS,
        "counter",
        ("reason",),
        "Requests whose X-Obs-Profile token was refused (wrong, or the client locked out).",
    ),
)

_BY_NAME = {spec.name: spec for spec in CATALOGUE}

#: Label names a request's own labels already use: extra labels may not take them.
RESERVED_LABELS: frozenset[str] = frozenset(
    {label for row in CATALOGUE for label in row.labels} | {"job", "instance", "le", "quantile"}
)


def catalogue(extra_labels: tuple[str, ...] = ()) -> tuple[MetricSpec, ...]:
    """The catalogue as a service exports it: the duration histogram, which every RED panel
    reads, carries the service's extra labels (``extra_labels=`` of the middleware) last.

    Dashboards built with the same *extra_labels* can group and filter by them; every other
    name and label is :data:`CATALOGUE`'s.
    """
    if not extra_labels:
        return CATALOGUE
    return tuple(
        MetricSpec(row.name, row.kind, row.labels + extra_labels, row.help)
        if row.name == REQUEST_DURATION
        else row
        for row in CATALOGUE
    )


def spec(name: str) -> MetricSpec:
    """Return the catalogue entry called *name* (a ``KeyError`` names the known ones)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name!r} is not in the obs catalogue; known: {sorted(_BY_NAME)}") from None


def _base(name: str) -> str:
    return name.removesuffix("_total")


class ObsMetrics:
    """The live metric objects of one registry.

    Build it with :func:`get_metrics`, which returns the same instance for the same registry:
    frameworks that rebuild their middleware stack must not register anything twice. In a single
    process the families come from :mod:`obs.prometheus.families` (lean, no per-value locks); with
    ``PROMETHEUS_MULTIPROC_DIR`` set they are prometheus_client's, which share values between
    worker processes through files.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        if self.multiprocess:
            from obs.prometheus.multiprocess import ensure_multiprocess_values

            ensure_multiprocess_values()
        #: The duration histogram's boundaries and extra labels, once it exists.
        self.duration_buckets: tuple[float, ...] | None = None
        self.extra_labels: tuple[str, ...] = ()
        self._request_duration: Any = None
        self.active_requests = self._gauge(ACTIVE_REQUESTS, "livesum")
        self.request_body_size = self._histogram(REQUEST_BODY_SIZE, SIZE_BUCKETS)
        self.response_body_size = self._histogram(RESPONSE_BODY_SIZE, SIZE_BUCKETS)
        self.exceptions = self._counter(EXCEPTIONS)
        # Reentrant: a signal handler that logs may interrupt a count of this family.
        self.log_events = self._counter(LOG_EVENTS, reentrant=True)
        self.build_info = self._gauge(BUILD_INFO, "max")
        #: The label set of ``obs_build_info`` that follows the service name
        #: ``configure_logging`` sets (see :func:`say_build_info`), once one is said.
        self.followed_build_info: tuple[str, str] | None = None
        self.internal_errors = self._counter(INTERNAL_ERRORS)
        self.profile_token_rejections = self._counter(PROFILE_TOKEN_REJECTIONS)

    @property
    def request_duration(self) -> Any:
        """The duration histogram; made with the catalogue's buckets if nobody asked for others.

        Made on first use rather than with the other families: the log pipeline usually
        reaches the registry before the middleware says which buckets and labels it wants.
        """
        if self._request_duration is None:
            return self.duration_histogram(DURATION_BUCKETS, ())
        return self._request_duration

    def duration_histogram(self, buckets: tuple[float, ...], extra_labels: tuple[str, ...]) -> Any:
        """The duration histogram with *buckets* and *extra_labels*; a ConfigError if it
        already exists in this registry with others (two middlewares disagreeing)."""
        with _lock:
            if self._request_duration is None:
                row = spec(REQUEST_DURATION)
                labels = row.labels + extra_labels
                self._request_duration = self._histogram(REQUEST_DURATION, buckets, labels)
                self.duration_buckets, self.extra_labels = buckets, extra_labels
            elif (buckets, extra_labels) != (self.duration_buckets, self.extra_labels):
                raise ConfigError(
                    f"{REQUEST_DURATION} is already registered in this registry with buckets "
                    f"{self.duration_buckets} and extra labels {self.extra_labels}; give every "
                    "middleware the same duration_buckets and extra_labels, or its own registry."
                )
            return self._request_duration

    def _histogram(
        self, name: str, buckets: tuple[float, ...], labels: tuple[str, ...] | None = None
    ) -> Any:
        row = spec(name)
        labels = row.labels if labels is None else labels
        if self.multiprocess:
            from obs.prometheus.multiprocess import (
                exemplar_histogram,  # keeps exemplars across workers
            )

            histogram = Histogram(name, row.help, labels, registry=self.registry, buckets=buckets)
            return exemplar_histogram(histogram, buckets)
        family = HistogramFamily(name, row.help, labels, buckets)
        self.registry.register(family)
        return family

    def _gauge(self, name: str, multiprocess_mode: str) -> Any:
        row = spec(name)
        if self.multiprocess:
            return Gauge(
                name, row.help, row.labels, registry=self.registry,
                multiprocess_mode=multiprocess_mode,  # type: ignore[arg-type]
            )  # fmt: skip
        family = GaugeFamily(name, row.help, row.labels)
        self.registry.register(family)
        return family

    def _counter(self, name: str, *, reentrant: bool = False) -> Any:
        row = spec(name)
        if self.multiprocess:
            return Counter(_base(name), row.help, row.labels, registry=self.registry)
        family = CounterFamily(_base(name), row.help, row.labels, reentrant=reentrant)
        self.registry.register(family)
        return family


_lock = threading.RLock()
_instances: weakref.WeakKeyDictionary[CollectorRegistry, ObsMetrics] = weakref.WeakKeyDictionary()


def get_metrics(
    registry: CollectorRegistry | None = None,
    *,
    duration_buckets: tuple[float, ...] | None = None,
    extra_labels: tuple[str, ...] = (),
) -> ObsMetrics:
    """Return the obs metrics of *registry* (default: prometheus_client's global one).

    Idempotent: the first call registers the metrics, later calls return them. With
    *duration_buckets* or *extra_labels*, the duration histogram is made with them (a
    :class:`ConfigError` if it already exists with others).
    """
    registry = REGISTRY if registry is None else registry
    with _lock:
        metrics = _instances.get(registry)
        if metrics is None:
            metrics = ObsMetrics(registry)
            _instances[registry] = metrics
        if duration_buckets is not None or extra_labels:
            buckets = DURATION_BUCKETS if duration_buckets is None else duration_buckets
            metrics.duration_histogram(buckets, extra_labels)
        return metrics


#: The service name the last ``configure_logging`` call set, ``None`` before one.
_configured_service: list[str | None] = [None]


def say_build_info(
    registry: CollectorRegistry | None, service: str, version: str, *, follow: bool = False
) -> None:
    """Set ``obs_build_info{service, version}`` of *registry* to 1. With *follow* (settings
    read from the environment, not given), the service is the one ``configure_logging`` set
    when it ran (*service* until then) and follows it: a later :func:`service_configured`
    moves it, so the name the user configured is the metric's whichever comes first."""
    metrics = get_metrics(registry)
    with _lock:
        if follow:
            _move_followed(metrics, (_configured_service[0] or service, version))
        else:
            metrics.build_info.labels(service, version).set(1)


def service_configured(service: str) -> None:
    """``configure_logging`` set *service*: every ``obs_build_info`` that follows it says it
    (the label set it said before is dropped; in multiprocess mode, where prometheus_client
    cannot drop one, set to 0)."""
    with _lock:
        _configured_service[0] = service
        for metrics in list(_instances.values()):
            followed = metrics.followed_build_info
            if followed is not None and followed[0] != service:
                _move_followed(metrics, (service, followed[1]))


def _move_followed(metrics: ObsMetrics, label_set: tuple[str, str]) -> None:
    old = metrics.followed_build_info
    if old is not None and old != label_set:
        if metrics.multiprocess:
            metrics.build_info.labels(*old).set(0)
        else:
            metrics.build_info.remove(*old)
    metrics.build_info.labels(*label_set).set(1)
    metrics.followed_build_info = label_set


def _count_internal_error(component: str, registry: CollectorRegistry | None) -> None:
    get_metrics(registry).internal_errors.labels(component).inc()


selfreport.count_with(_count_internal_error)
