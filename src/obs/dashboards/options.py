"""What a user can change about the generated dashboards, alerts and provisioning files."""

from __future__ import annotations

import re
from dataclasses import dataclass

from obs.exceptions import ConfigError
from obs.metrics import DURATION_BUCKETS

_UID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_PREFIX = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_URL = re.compile(r"^https?://[^\s\"'<>]+$")
_LATENCY_SLO = re.compile(r"^\s*([0-9.]+)\s*(ms|s)\s*@\s*([0-9.]+)\s*%?\s*$")

#: The exemplar label obs attaches to histogram observations, and the JSON log field with the
#: same value: the one key that joins a latency point to its log lines.
REQUEST_ID = "request_id"

#: The objectives (availability and latency, in percent) the burn-rate alerts are meaningful
#: for. At 90 % a page already needs 60 % of the requests failing (6x the budget) for 30
#: minutes; below it the page can hardly or never fire. Above 99.999999 % the budget (1e-8) is
#: below the 10 decimal places an objective keeps.
MIN_OBJECTIVE_PERCENT = 90.0
MAX_OBJECTIVE_PERCENT = 99.999999
#: The largest low-traffic guard: beyond it the alert tests' counters lose integer precision.
MAX_MIN_REQUESTS = 10**9
_OBJECTIVES = f"from {MIN_OBJECTIVE_PERCENT:g} to {MAX_OBJECTIVE_PERCENT:.6f} %"


def _objective_ok(fraction: float) -> bool:
    return MIN_OBJECTIVE_PERCENT / 100 <= fraction <= MAX_OBJECTIVE_PERCENT / 100


@dataclass(frozen=True, slots=True)
class DashboardOptions:
    """Everything that differs between one deployment's dashboards and another's.

    The defaults match ``examples/stack/``: data sources provisioned with the uids ``prometheus``
    and ``loki``, reachable under their compose service names.
    """

    #: Default value of the ``service`` variable (the Loki ``service`` label of the logs).
    service_name: str = "unknown_service"
    #: Uid of the Prometheus data source the dashboards select by default.
    prometheus_uid: str = "prometheus"
    #: Uid of the Loki data source holding the JSON access logs.
    loki_uid: str = "loki"
    #: Uid of a Pyroscope data source; when set, the dashboards link to its flame graphs.
    pyroscope_uid: str | None = None
    #: Prepended to every obs metric name, for services that renamed them at scrape time.
    metric_prefix: str = ""
    #: URLs written into the data source provisioning file.
    prometheus_url: str = "http://prometheus:9090"
    loki_url: str = "http://loki:3100"
    pyroscope_url: str = "http://pyroscope:4040"
    #: Availability objective: the fraction of requests that must not fail with a 5xx.
    availability_slo: float = 0.999
    #: Latency objective: *latency_slo_ratio* of requests complete within *latency_slo_seconds*.
    #: The threshold must be a bucket boundary of the duration histogram, so the burn rate is
    #: exact (read from one ``le`` series) instead of interpolated.
    latency_slo_seconds: float = 0.5
    latency_slo_ratio: float = 0.99
    #: Alerts are quiet while a job served fewer requests than this over the alert's long window:
    #: one failure among a handful of requests is not a budget burning.
    min_requests: int = 100
    #: Where Grafana is reached from the alert notifications; alert links are absolute.
    grafana_url: str = "http://localhost:3000"
    #: The alerts' ``runbook_url``; empty means the runbook panel of the generated overview.
    runbook_url: str = ""

    def __post_init__(self) -> None:
        for field, uid in (
            ("prometheus_uid", self.prometheus_uid),
            ("loki_uid", self.loki_uid),
            ("pyroscope_uid", self.pyroscope_uid),
        ):
            if uid is not None and not _UID.match(uid):
                raise ConfigError(
                    f"{field}={uid!r} is not a Grafana data source uid; "
                    "use 1 to 40 letters, digits, '-' or '_'."
                )
        if self.metric_prefix and not _PREFIX.match(self.metric_prefix):
            raise ConfigError(
                f"metric prefix {self.metric_prefix!r} cannot start a Prometheus metric name; "
                "use letters, digits, '_' or ':' and no leading digit."
            )
        if not _objective_ok(self.availability_slo):
            raise ConfigError(
                f"availability_slo={self.availability_slo} is invalid; use a fraction "
                f"{_OBJECTIVES} (/100), such as 0.999."
            )
        if not _objective_ok(self.latency_slo_ratio):
            raise ConfigError(
                f"latency_slo_ratio={self.latency_slo_ratio} is invalid; use a fraction "
                f"{_OBJECTIVES} (/100), such as 0.99."
            )
        if self.latency_slo_seconds not in DURATION_BUCKETS:
            bounds = ", ".join(f"{b:g}s" for b in DURATION_BUCKETS)
            raise ConfigError(
                f"latency SLO threshold {self.latency_slo_seconds:g}s is not a bucket boundary of "
                f"the duration histogram; use one of {bounds}."
            )
        if not 0 <= self.min_requests <= MAX_MIN_REQUESTS:
            raise ConfigError(
                f"min_requests={self.min_requests} is invalid; use 0 to {MAX_MIN_REQUESTS} "
                "requests (the low-traffic guard)."
            )
        for field, url in (("grafana_url", self.grafana_url), ("runbook_url", self.runbook_url)):
            if (url or field == "grafana_url") and not _URL.match(url):
                raise ConfigError(
                    f"{field}={url!r} is not an http(s) URL; use one like http://grafana:3000."
                )
        if not self.service_name.strip() or '"' in self.service_name:
            raise ConfigError(
                f"service name {self.service_name!r} must be non-empty, without '\"'."
            )

    def metric(self, name: str) -> str:
        """The exposed name of the catalogue metric *name*, prefix included."""
        return f"{self.metric_prefix}{name}"

    @property
    def grafana_base(self) -> str:
        """:attr:`grafana_url` without a trailing slash, to prepend to ``/d/...`` paths."""
        return self.grafana_url.rstrip("/")


def _parse_percent(text: str) -> float | None:
    """*text* as a percentage within the objectives' range, or None."""
    try:
        percent = float(text.strip().removesuffix("%"))
    except ValueError:
        return None
    if not MIN_OBJECTIVE_PERCENT <= percent <= MAX_OBJECTIVE_PERCENT:
        return None
    return percent


def parse_availability_slo(text: str) -> float:
    """``"99.9"`` (percent) -> 0.999; the CLI's ``--slo-availability``."""
    percent = _parse_percent(text)
    if percent is None:
        raise ConfigError(
            f"--slo-availability {text!r} is invalid; give a percentage {_OBJECTIVES}, "
            "such as 99.9."
        )
    return round(percent / 100.0, 10)


def parse_latency_slo(text: str) -> tuple[float, float]:
    """``"0.5s@99"`` -> (0.5, 0.99): threshold in seconds and the fraction within it."""
    match = _LATENCY_SLO.match(text)
    if match is None:
        raise ConfigError(
            f"--slo-latency {text!r} is invalid; give THRESHOLD@PERCENT such as 0.5s@99 or 250ms@99.9."
        )
    value, unit, percent_text = match.groups()
    try:
        seconds = round(float(value) / (1000.0 if unit == "ms" else 1.0), 10)
    except ValueError:
        raise ConfigError(
            f"--slo-latency {text!r} is invalid; give THRESHOLD@PERCENT such as 0.5s@99."
        ) from None
    percent = _parse_percent(percent_text)
    if percent is None:
        raise ConfigError(
            f"--slo-latency {text!r} is invalid; give THRESHOLD@PERCENT with a percentage "
            f"{_OBJECTIVES}, such as 0.5s@99."
        )
    if seconds not in DURATION_BUCKETS:
        bounds = ", ".join(f"{b:g}s" for b in DURATION_BUCKETS)
        raise ConfigError(
            f"--slo-latency {text!r} is invalid: {seconds:g}s is not a bucket boundary of the "
            f"duration histogram; use one of {bounds}."
        )
    return seconds, round(percent / 100.0, 10)


def parse_min_requests(value: int) -> int:
    """The CLI's ``--min-requests``, range-checked under its own name."""
    if not 0 <= value <= MAX_MIN_REQUESTS:
        raise ConfigError(
            f"--min-requests {value} is invalid; give 0 to {MAX_MIN_REQUESTS} requests."
        )
    return value
