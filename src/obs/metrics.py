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

    def __init__(self, registry: CollectorRegistry, duration_buckets: tuple[float, ...]) -> None:
        self.registry = registry
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        if self.multiprocess:
            from obs.prometheus.multiprocess import ensure_multiprocess_values

            ensure_multiprocess_values()
        self.request_duration = self._histogram(REQUEST_DURATION, duration_buckets)
        self.active_requests = self._gauge(ACTIVE_REQUESTS, "livesum")
        self.request_body_size = self._histogram(REQUEST_BODY_SIZE, SIZE_BUCKETS)
        self.response_body_size = self._histogram(RESPONSE_BODY_SIZE, SIZE_BUCKETS)
        self.exceptions = self._counter(EXCEPTIONS)
        self.log_events = self._counter(LOG_EVENTS)
        self.build_info = self._gauge(BUILD_INFO, "max")
        self.internal_errors = self._counter(INTERNAL_ERRORS)
        self.profile_token_rejections = self._counter(PROFILE_TOKEN_REJECTIONS)

    def _histogram(self, name: str, buckets: tuple[float, ...]) -> Any:
        row = spec(name)
        if self.multiprocess:
            from obs.prometheus.multiprocess import (
                exemplar_histogram,  # keeps exemplars across workers
            )

            histogram = Histogram(
                name, row.help, row.labels, registry=self.registry, buckets=buckets
            )
            return exemplar_histogram(histogram, buckets)
        family = HistogramFamily(name, row.help, row.labels, buckets)
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

    def _counter(self, name: str) -> Any:
        row = spec(name)
        if self.multiprocess:
            return Counter(_base(name), row.help, row.labels, registry=self.registry)
        family = CounterFamily(_base(name), row.help, row.labels)
        self.registry.register(family)
        return family


_lock = threading.Lock()
_instances: weakref.WeakKeyDictionary[CollectorRegistry, ObsMetrics] = weakref.WeakKeyDictionary()


def get_metrics(
    registry: CollectorRegistry | None = None,
    *,
    duration_buckets: tuple[float, ...] = DURATION_BUCKETS,
) -> ObsMetrics:
    """Return the obs metrics of *registry* (default: prometheus_client's global one).

    Idempotent: the first call registers the metrics, later calls return them.
    """
    registry = REGISTRY if registry is None else registry
    with _lock:
        metrics = _instances.get(registry)
        if metrics is None:
            metrics = ObsMetrics(registry, duration_buckets)
            _instances[registry] = metrics
        return metrics


def _count_internal_error(component: str, registry: CollectorRegistry | None) -> None:
    get_metrics(registry).internal_errors.labels(component).inc()


selfreport.count_with(_count_internal_error)
