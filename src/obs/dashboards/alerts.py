"""SLO recording rules and multi-window, multi-burn-rate alerts, as in the Google SRE workbook.

Two objectives are protected: availability (requests not failing with a 5xx) and latency
(requests faster than a histogram bucket boundary). For each, recording rules compute the
per-job "bad" ratio over every window once, and two alerts read them:

* page: the budget burns 14.4x too fast over 1 h and 5 min, or 6x over 6 h and 30 min;
* ticket: it burns 1x over 3 days and 6 h.

The long window says the burn is significant, the short one that it is still going on (so an
alert resolves minutes after the errors stop). A low-traffic guard keeps the alerts quiet while
a job served fewer than ``min_requests`` over the long window.

The ``/metrics`` scrape is not filtered here: the middleware does not count it as traffic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from obs.dashboards import promql as q
from obs.dashboards.common import HTTP_UID, LOGS_UID, SERVICE_VAR
from obs.dashboards.options import DashboardOptions
from obs.metrics import REQUEST_DURATION

RECORDING_GROUP = "obs-slo-recording"
ALERT_GROUP = "obs-slo-alerts"
JOB_TEMPLATE = "{{ $labels.job }}"
#: Every window a burn-rate condition reads, with its length in seconds.
WINDOWS: dict[str, int] = {"5m": 300, "30m": 1800, "1h": 3600, "6h": 21600, "3d": 259200}


@dataclass(frozen=True, slots=True)
class BurnWindow:
    """One condition: the bad ratio exceeds *factor* times the budget over both windows."""

    factor: float
    long_window: str
    short_window: str


@dataclass(frozen=True, slots=True)
class BurnAlert:
    """An alert firing when any of its conditions holds."""

    suffix: str
    severity: str
    for_: str
    windows: tuple[BurnWindow, ...]


PAGE = BurnAlert("Page", "page", "2m", (BurnWindow(14.4, "1h", "5m"), BurnWindow(6.0, "6h", "30m")))
TICKET = BurnAlert("Ticket", "ticket", "15m", (BurnWindow(1.0, "3d", "6h"),))
TIERS: tuple[BurnAlert, ...] = (PAGE, TICKET)


@dataclass(frozen=True, slots=True)
class Objective:
    """An SLO: the name of its "bad" ratio recording and the budget (1 - objective)."""

    name: str
    alert_prefix: str
    budget: float
    what: str


#: The panel id of the runbook text panel on the HTTP overview (a link target).
RUNBOOK_PANEL_ID = 101


def objectives(options: DashboardOptions) -> tuple[Objective, Objective]:
    """The availability and latency objectives of *options*."""
    return (
        Objective(
            "errors",
            "ObsAvailabilityBudgetBurn",
            1 - options.availability_slo,
            f"requests failing with a 5xx (objective {options.availability_slo * 100:g}%)",
        ),
        Objective(
            "slow",
            "ObsLatencyBudgetBurn",
            1 - options.latency_slo_ratio,
            f"requests slower than {options.latency_slo_seconds:g}s "
            f"(objective {options.latency_slo_ratio * 100:g}% within it)",
        ),
    )


def requests_record(window: str) -> str:
    """Recording name: requests per second per job over *window*."""
    return f"job:obs_http_requests:rate{window}"


def ratio_record(objective: str, window: str) -> str:
    """Recording name: the fraction of *objective*'s bad requests per job over *window*."""
    return f"job:obs_http_{objective}_ratio:rate{window}"


def le_value(bound: float) -> str:
    """A bucket bound as prometheus_client writes the ``le`` label: 1.0, 2.5, 0.005."""
    return repr(float(bound))


def _recording_rules(options: DashboardOptions) -> list[dict[str, Any]]:
    duration = options.metric(REQUEST_DURATION)
    count = f"{duration}_count"
    within = (f'le="{le_value(options.latency_slo_seconds)}"',)
    rules: list[dict[str, Any]] = []
    for window in WINDOWS:
        total = q.sum_rate(count, (), by=("job",), window=window)
        errors = q.sum_rate(count, (q.SERVER_ERROR,), by=("job",), window=window)
        fast = q.sum_rate(f"{duration}_bucket", within, by=("job",), window=window)
        rules.append({"record": requests_record(window), "expr": total})
        # `or ... * 0`: the ratio is 0, not absent, while a job has traffic and no 5xx series.
        rules.append(
            {
                "record": ratio_record("errors", window),
                "expr": f"(\n  {errors}\n  or\n  {total} * 0\n)\n/\n{total}",
            }
        )
        rules.append(
            {"record": ratio_record("slow", window), "expr": f"1 - (\n  {fast}\n  /\n  {total}\n)"}
        )
    return rules


def runbook_url(options: DashboardOptions, alert: str) -> str:
    """The alert's runbook: *options.runbook_url* with the alert as anchor, or the panel."""
    if options.runbook_url:
        return f"{options.runbook_url}#{alert.lower()}"
    return f"{options.grafana_base}/d/{HTTP_UID}?viewPanel={RUNBOOK_PANEL_ID}"


def _condition(objective: Objective, burn: BurnWindow, min_requests: int) -> str:
    threshold = f"{burn.factor:g} * {objective.budget:.6g}"
    guard = f"{requests_record(burn.long_window)} * {WINDOWS[burn.long_window]} >= {min_requests}"
    return (
        f"(\n  {ratio_record(objective.name, burn.long_window)} > ({threshold})\n"
        f"  and\n  {ratio_record(objective.name, burn.short_window)} > ({threshold})\n"
        f"  and\n  {guard}\n)"
    )


def _alert_rule(options: DashboardOptions, objective: Objective, tier: BurnAlert) -> dict[str, Any]:
    name = f"{objective.alert_prefix}{tier.suffix}"
    expr = "\nor\n".join(_condition(objective, w, options.min_requests) for w in tier.windows)
    windows = "; ".join(
        f"{w.factor:g}x over {w.long_window} and {w.short_window}" for w in tier.windows
    )
    dashboard = f"{options.grafana_base}/d/{HTTP_UID}?var-job={JOB_TEMPLATE}"
    logs = f"{options.grafana_base}/d/{LOGS_UID}?" + urlencode(
        {f"var-{SERVICE_VAR}": options.service_name}
    )
    return {
        "alert": name,
        "expr": expr,
        "for": tier.for_,
        "labels": {"severity": tier.severity, "slo": objective.name},
        "annotations": {
            "summary": f"{JOB_TEMPLATE} is burning its {objective.name} budget too fast",
            "description": (
                f"The ratio of {objective.what} exceeds the budget burn of {windows} "
                f"(at least {options.min_requests} requests over the long window)."
            ),
            "runbook_url": runbook_url(options, name),
            "dashboard": dashboard,
            "logs": logs,
        },
    }


def alert_rules(options: DashboardOptions) -> dict[str, Any]:
    """The content of ``alerts.yml``: the recording rules, then the burn-rate alerts."""
    alerts = [_alert_rule(options, o, tier) for o in objectives(options) for tier in TIERS]
    return {
        "groups": [
            {"name": RECORDING_GROUP, "rules": _recording_rules(options)},
            {"name": ALERT_GROUP, "rules": alerts},
        ]
    }


def alert_names(options: DashboardOptions) -> list[str]:
    """Every alert ``alert_rules`` defines, in order."""
    return [f"{o.alert_prefix}{tier.suffix}" for o in objectives(options) for tier in TIERS]
