"""What a user can change about the generated dashboards, alerts and provisioning files."""

from __future__ import annotations

import re
from dataclasses import dataclass

from obs.exceptions import ConfigError

_UID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_PREFIX = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")

#: The exemplar label obs attaches to histogram observations, and the JSON log field with the
#: same value: the one key that joins a latency point to its log lines.
REQUEST_ID = "request_id"


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
    #: Availability objective the error-budget burn-rate alerts protect.
    availability_slo: float = 0.999
    #: p99 latency, in seconds, above which the latency alert fires.
    latency_p99_seconds: float = 1.0

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
        if not 0.0 < self.availability_slo < 1.0:
            raise ConfigError(
                f"availability SLO {self.availability_slo} is invalid; use a number between 0 "
                "and 1, such as 0.999."
            )
        if self.latency_p99_seconds <= 0:
            raise ConfigError("the p99 latency threshold must be a positive number of seconds.")
        if not self.service_name.strip() or '"' in self.service_name:
            raise ConfigError(
                f"service name {self.service_name!r} must be non-empty, without '\"'."
            )

    def metric(self, name: str) -> str:
        """The exposed name of the catalogue metric *name*, prefix included."""
        return f"{self.metric_prefix}{name}"
