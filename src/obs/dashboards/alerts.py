"""Prometheus alerting rules for the obs metrics, and ``promtool test rules`` tests for them.

Errors are alerted on as error-budget burn rates over two windows each (the multi-window,
multi-burn-rate recipe of the Google SRE workbook): a fast burn pages, a slow burn opens a
ticket, and the short window makes an alert stop soon after the errors do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from obs.dashboards import promql as q
from obs.dashboards.common import HTTP_UID, LOGS_UID
from obs.dashboards.options import DashboardOptions
from obs.metrics import DURATION_BUCKETS, METHOD, REQUEST_DURATION, ROUTE, STATUS

GROUP = "obs-http"
JOB_TEMPLATE = "{{ $labels.job }}"


@dataclass(frozen=True, slots=True)
class BurnRate:
    """One burn-rate alert: how fast the budget burns, over which two windows, for how long."""

    alert: str
    factor: float
    long_window: str
    short_window: str
    for_: str
    severity: str


BURN_RATES: tuple[BurnRate, ...] = (
    BurnRate("ObsErrorBudgetFastBurn", 14.4, "1h", "5m", "2m", "page"),
    BurnRate("ObsErrorBudgetSlowBurn", 6.0, "6h", "30m", "15m", "ticket"),
)
LATENCY_ALERT = "ObsHighLatencyP99"


def _job_error_ratio(options: DashboardOptions, window: str) -> str:
    count = f"{options.metric(REQUEST_DURATION)}_count"
    errors = q.sum_rate(count, (q.SERVER_ERROR,), by=("job",), window=window)
    total = q.sum_rate(count, (), by=("job",), window=window)
    return f"{errors}\n  /\n{total}"


def _burn_rule(options: DashboardOptions, burn: BurnRate) -> dict[str, Any]:
    threshold = f"{burn.factor:g} * {1 - options.availability_slo:.6g}"
    expr = (
        f"(\n{_job_error_ratio(options, burn.long_window)}\n) > ({threshold})\n"
        f"and\n(\n{_job_error_ratio(options, burn.short_window)}\n) > ({threshold})"
    )
    return {
        "alert": burn.alert,
        "expr": expr,
        "for": burn.for_,
        "labels": {"severity": burn.severity},
        "annotations": {
            "summary": f"{JOB_TEMPLATE} is burning its error budget {burn.factor:g}x too fast",
            "description": (
                f"More than {burn.factor:g} x {1 - options.availability_slo:.6g} of requests "
                f"failed with a 5xx status over the last {burn.long_window} and the last "
                f"{burn.short_window} (availability objective {options.availability_slo:g})."
            ),
            "dashboard": f"/d/{HTTP_UID}",
            "logs": f"/d/{LOGS_UID}",
        },
    }


def _latency_rule(options: DashboardOptions) -> dict[str, Any]:
    p99 = q.quantile(0.99, options.metric(REQUEST_DURATION), (), by=("job",), window="5m")
    return {
        "alert": LATENCY_ALERT,
        "expr": f"{p99}\n  > {options.latency_p99_seconds:g}",
        "for": "10m",
        "labels": {"severity": "ticket"},
        "annotations": {
            "summary": f"{JOB_TEMPLATE} p99 latency is above {options.latency_p99_seconds:g}s",
            "description": (
                "The slowest 1% of requests took longer than "
                f"{options.latency_p99_seconds:g}s over the last 5 minutes, for 10 minutes."
            ),
            "dashboard": f"/d/{HTTP_UID}",
        },
    }


def alert_rules(options: DashboardOptions) -> dict[str, Any]:
    """The content of ``alerts.yml``."""
    rules = [_burn_rule(options, burn) for burn in BURN_RATES]
    rules.append(_latency_rule(options))
    return {"groups": [{"name": GROUP, "rules": rules}]}


# -- promtool unit tests --------------------------------------------------------------------------


def _le(bound: float) -> str:
    return repr(float(bound))  # as prometheus_client writes it: 1.0, 2.5, 0.005


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    rendered = ", ".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{name}{{{rendered}}}", "values": values}


def _expected(rule: dict[str, Any], job: str) -> dict[str, Any]:
    annotations = {
        key: value.replace(JOB_TEMPLATE, job) for key, value in rule["annotations"].items()
    }
    return {"exp_labels": {**rule["labels"], "job": job}, "exp_annotations": annotations}


def alert_tests(options: DashboardOptions, *, rule_file: str = "alerts.yml") -> dict[str, Any]:
    """The content of ``alerts_test.yml``: each alert fires on bad traffic, not on good."""
    rules = {rule["alert"]: rule for rule in alert_rules(options)["groups"][0]["rules"]}
    count = f"{options.metric(REQUEST_DURATION)}_count"
    bucket = f"{options.metric(REQUEST_DURATION)}_bucket"
    labels = {"job": "api", METHOD: "GET", ROUTE: "/orders/{id}"}
    ok = {**labels, STATUS: "200"}
    failed = {**labels, STATUS: "500"}
    # 10 requests/s succeed, 1 request/s fails: a 9% error ratio, far above any budget.
    failing = [_series(count, ok, "0+600x480"), _series(count, failed, "0+60x480")]
    healthy = [_series(count, ok, "0+600x480")]
    # Every request lands in the first bucket whose lower bound is at least the threshold.
    slow_from = next(
        (
            upper
            for lower, upper in pairwise(DURATION_BUCKETS)
            if lower >= options.latency_p99_seconds
        ),
        math.inf,
    )
    slow = [
        _series(bucket, {**ok, "le": _le(le)}, "0+0x60" if le < slow_from else "0+60x60")
        for le in DURATION_BUCKETS
    ]
    slow.append(_series(bucket, {**ok, "le": "+Inf"}, "0+60x60"))
    burn_names = [burn.alert for burn in BURN_RATES]
    return {
        "rule_files": [rule_file],
        "evaluation_interval": "1m",
        "tests": [
            {
                "name": "5xx errors burn the budget: both burn-rate alerts fire",
                "interval": "1m",
                "input_series": failing,
                "alert_rule_test": [
                    {
                        "eval_time": "70m",
                        "alertname": name,
                        "exp_alerts": [_expected(rules[name], "api")],
                    }
                    for name in burn_names
                ],
            },
            {
                "name": "no errors: no burn-rate alert",
                "interval": "1m",
                "input_series": healthy,
                "alert_rule_test": [
                    {"eval_time": "70m", "alertname": name, "exp_alerts": []} for name in burn_names
                ],
            },
            {
                "name": "every request slower than the p99 threshold: the latency alert fires",
                "interval": "1m",
                "input_series": slow,
                "alert_rule_test": [
                    {"eval_time": "5m", "alertname": LATENCY_ALERT, "exp_alerts": []},
                    {
                        "eval_time": "30m",
                        "alertname": LATENCY_ALERT,
                        "exp_alerts": [_expected(rules[LATENCY_ALERT], "api")],
                    },
                ],
            },
        ],
    }
