"""Checks of a running service from outside (``--url``): what its responses and ``/metrics``
show. The doctor's own probe request (an unmatched path, so a 404) is what they look at."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from obs.doctor.findings import Finding, fail, ok, skip, warn
from obs.doctor.http import Response, get
from obs.metrics import LOG_EVENTS, REQUEST_DURATION
from obs.prometheus.multiprocess.exemplars import FLUSH_INTERVAL

OPENMETRICS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;charset=utf-8,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
#: Scrapes after the first while the probe's exemplar is missing: up to 1.5 flush intervals.
EXEMPLAR_RETRIES = 3


@dataclass(frozen=True, slots=True)
class Scrape:
    """A ``/metrics`` body read with prometheus_client's own parsers (label values may hold
    braces, quotes and escapes: a route template ``/{full_path:path}``)."""

    totals: dict[str, float]
    exemplar_ids: list[str]
    error: str = ""

    @property
    def has_obs_metrics(self) -> bool:
        """Whether obs's metrics are in it (``obs_build_info`` is, from the first request)."""
        return any(name.startswith(("obs_", "http_server_")) for name in self.totals)


def parse_scrape(response: Response) -> Scrape:
    """The sample totals by name and the request ids of the duration histogram's exemplars."""
    from prometheus_client.openmetrics.parser import (
        text_string_to_metric_families as parse_openmetrics,
    )
    from prometheus_client.parser import text_string_to_metric_families as parse_text

    openmetrics = response.headers.get("content-type", "").startswith(
        "application/openmetrics-text"
    )
    parse = parse_openmetrics if openmetrics else parse_text
    bucket = REQUEST_DURATION + "_bucket"
    totals: dict[str, float] = {}
    ids: list[str] = []
    try:
        for family in parse(response.body):
            for sample in family.samples:
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
                exemplar = sample.exemplar
                if sample.name == bucket and exemplar and "request_id" in exemplar.labels:
                    ids.append(exemplar.labels["request_id"])
    except ValueError as exc:  # what Prometheus would reject too
        return Scrape(totals, ids, str(exc).splitlines()[0] if str(exc) else "unparsable")
    return Scrape(totals, ids)


class ServiceProbe:
    """One look at the service: the probe request, then an OpenMetrics scrape."""

    def __init__(self, url: str, metrics_path: str, request_id_header: str) -> None:
        self.url = url.rstrip("/")
        self.request_id = "obs-doctor-" + os.urandom(6).hex()
        self.request_id_header = request_id_header
        self.probe: Response | None = None
        self.metrics: Response | None = None
        self.scrape = Scrape({}, [])
        self.error = ""
        try:
            self.probe = get(f"{self.url}/obs-doctor-probe", {request_id_header: self.request_id})
            self.metrics = get(self.url + metrics_path, {"Accept": OPENMETRICS_ACCEPT})
            self.scrape = parse_scrape(self.metrics)
            # With several workers a worker's exemplars reach the scrape through its side file,
            # written at most every FLUSH_INTERVAL seconds: look again, bounded, before saying
            # the probe's exemplar is missing.
            for _ in range(EXEMPLAR_RETRIES):
                if self.request_id in self.scrape.exemplar_ids or self.metrics.status != 200:
                    break
                time.sleep(FLUSH_INTERVAL / 2)
                self.metrics = get(self.url + metrics_path, {"Accept": OPENMETRICS_ACCEPT})
                self.scrape = parse_scrape(self.metrics)
        except OSError as exc:
            self.error = str(exc)

    @property
    def openmetrics(self) -> bool:
        """Whether the scrape came back as OpenMetrics."""
        content_type = self.metrics.headers.get("content-type", "") if self.metrics else ""
        return content_type.startswith("application/openmetrics-text")

    @property
    def reached(self) -> bool:
        """Whether the metrics path answered with obs's metrics (an OpenMetrics body that does
        not parse counts: that is the OpenMetrics check's to report)."""
        if self.metrics is None or self.metrics.status != 200:
            return False
        return self.scrape.has_obs_metrics or bool(self.openmetrics and self.scrape.error)

    @property
    def read_metrics(self) -> bool:
        """Whether the checks can read the scrape's samples."""
        return self.reached and not self.scrape.error

    def sample_total(self, name: str) -> float | None:
        """The sum of the samples called *name* in the scrape, ``None`` if there are none."""
        return self.scrape.totals.get(name)


def _first_fix(probe: ServiceProbe) -> str:
    """Which failed check to fix before a check that needs the scrape can run."""
    if probe.reached and probe.scrape.error:
        return "fix OpenMetrics first"
    return "fix /metrics reachable first"


def check_reachable(probe: ServiceProbe) -> Finding:
    name = "/metrics reachable"
    if probe.metrics is None:
        return fail(
            name,
            f"{probe.url} does not answer ({probe.error})",
            "check --url and that the service runs",
        )
    if probe.metrics.status != 200:
        return fail(
            name,
            f"the metrics path answered {probe.metrics.status}",
            "serve obs's metrics app there (make_metrics_app(), instrument(), metrics_view)",
        )
    if not probe.reached:
        content_type = probe.metrics.headers.get("content-type", "no content type")
        return fail(
            name,
            f"the metrics path answered 200 ({content_type}) with none of obs's metrics",
            "point --metrics-path at obs's metrics app (make_metrics_app(), instrument(), "
            "metrics_view), in a process obs's middleware runs in",
        )
    return ok(name, "200")


def check_openmetrics(probe: ServiceProbe) -> Finding:
    name = "OpenMetrics"
    if probe.metrics is None or not probe.reached:
        return skip(name, "no scrape to look at", "fix /metrics reachable first")
    content_type = probe.metrics.headers.get("content-type", "")
    if content_type.startswith("application/openmetrics-text") and probe.scrape.error:
        return fail(
            name,
            f"negotiated, but the body does not parse ({probe.scrape.error}): Prometheus "
            "rejects the scrape",
            "serve /metrics with obs's make_metrics_app(), one registry, no hand-written lines",
        )
    if content_type.startswith("application/openmetrics-text"):
        return ok(name, "negotiated when asked for (exemplars can reach Prometheus)")
    return fail(
        name,
        f"asked for OpenMetrics, got {content_type or 'no content type'}: exemplars never leave",
        "serve /metrics with obs's make_metrics_app() (it negotiates), not a plain text endpoint",
    )


def check_outermost(probe: ServiceProbe) -> Finding:
    name = "obs outermost"
    if probe.probe is None:
        return skip(name, "the probe request got no answer", "fix /metrics reachable first")
    returned = probe.probe.headers.get(probe.request_id_header.lower())
    if returned == probe.request_id:
        return ok(
            name,
            f"a {probe.probe.status} carried the request id back (obs sends 500s itself too)",
        )
    if returned:
        return warn(
            name,
            f"the {probe.request_id_header} sent was replaced by {returned!r}",
            "something in front of obs rewrites request ids; let obs read the incoming one",
        )
    return fail(
        name,
        f"a {probe.probe.status} came back without {probe.request_id_header}",
        "wrap the whole app: app = ObservabilityMiddleware(app) as the last line (outermost), "
        "not inside another middleware or error handler",
    )


def check_exemplars(probe: ServiceProbe) -> Finding:
    name = "exemplars"
    if not probe.read_metrics:
        return skip(name, "no scrape to look at", _first_fix(probe))
    if not probe.openmetrics:
        return skip(name, "no OpenMetrics scrape, so no exemplars", "fix OpenMetrics first")
    ids = probe.scrape.exemplar_ids
    if probe.request_id in ids:
        return ok(name, "the probe's request id is an exemplar of the duration histogram")
    if ids:
        return ok(name, f"{len(ids)} exemplars with request ids")
    return fail(
        name,
        "no exemplar with a request id",
        "keep request_ids=True (the default) and put the probe path under obs's middleware",
    )


def check_logging(probe: ServiceProbe, log_format: str | None) -> Finding:
    name = "logging"
    if not probe.read_metrics:
        return skip(name, f"no scrape to read {LOG_EVENTS} from", _first_fix(probe))
    events = probe.sample_total(LOG_EVENTS)
    if events:
        how = f", as {log_format}" if log_format else ""
        return ok(name, f"obs's pipeline writes the service's lines{how} ({events:g} so far)")
    return fail(
        name,
        f"no line went through obs's pipeline ({LOG_EVENTS} is 0): the server's and obs's "
        "lines come out in different formats",
        "call obs.configure_logging() at start-up (gunicorn: -c python:obs.gunicorn)",
    )
