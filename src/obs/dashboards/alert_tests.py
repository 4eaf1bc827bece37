"""``promtool test rules`` cases for :mod:`obs.dashboards.alerts`: each alert fires and stays quiet.

The input series are what obs exports (the duration histogram's ``_count`` and the ``le`` bucket
of the latency threshold), at rates chosen so that exactly the intended burn-rate condition
holds: a fast burn, a 6x burn only the 6 h window sees, a slow burn only the 3-day ticket sees,
healthy traffic, and a high error ratio on too little traffic (the low-traffic guard).
"""

from __future__ import annotations

from typing import Any

from obs.dashboards.alerts import (
    ALERT_GROUP,
    JOB_TEMPLATE,
    PAGE,
    TICKET,
    alert_rules,
    le_value,
    objectives,
)
from obs.dashboards.options import DashboardOptions
from obs.metrics import METHOD, REQUEST_DURATION, ROUTE, STATUS

JOB = "api"


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    rendered = ", ".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{name}{{{rendered}}}", "values": values}


def _traffic(
    options: DashboardOptions, *, ok: float, failed: float, fast: float, steps: int
) -> list[dict[str, str]]:
    """Counters growing by *ok* / *failed* requests per step.

    *fast* of the successful requests (and every failed one) finished within the latency SLO.
    """
    duration = options.metric(REQUEST_DURATION)
    labels = {"job": JOB, METHOD: "GET", ROUTE: "/orders/{id}"}
    le = {"le": le_value(options.latency_slo_seconds)}
    series = [
        _series(f"{duration}_count", {**labels, STATUS: "200"}, f"0+{ok:g}x{steps}"),
        _series(f"{duration}_bucket", {**labels, STATUS: "200", **le}, f"0+{fast:g}x{steps}"),
    ]
    if failed:
        series.append(
            _series(f"{duration}_count", {**labels, STATUS: "500"}, f"0+{failed:g}x{steps}")
        )
        series.append(
            _series(f"{duration}_bucket", {**labels, STATUS: "500", **le}, f"0+{failed:g}x{steps}")
        )
    return series


def alert_tests(options: DashboardOptions, *, rule_file: str = "alerts.yml") -> dict[str, Any]:
    """The content of ``alerts_test.yml``."""
    rules = {
        rule["alert"]: rule
        for group in alert_rules(options)["groups"]
        if group["name"] == ALERT_GROUP
        for rule in group["rules"]
    }
    availability, latency = (o.alert_prefix for o in objectives(options))
    budget_errors = 1 - options.availability_slo
    budget_slow = 1 - options.latency_slo_ratio

    def expect(eval_time: str, firing: dict[str, bool]) -> list[dict[str, Any]]:
        checks = []
        for name, fires in firing.items():
            rule = rules[name]
            expected = []
            if fires:
                annotations = {
                    key: value.replace(JOB_TEMPLATE, JOB)
                    for key, value in rule["annotations"].items()
                }
                expected.append(
                    {"exp_labels": {**rule["labels"], "job": JOB}, "exp_annotations": annotations}
                )
            checks.append({"eval_time": eval_time, "alertname": name, "exp_alerts": expected})
        return checks

    page_a, ticket_a = f"{availability}{PAGE.suffix}", f"{availability}{TICKET.suffix}"
    page_l, ticket_l = f"{latency}{PAGE.suffix}", f"{latency}{TICKET.suffix}"
    # Per-minute rates for the page cases, per-5-minute rates for the 3-day ticket cases.
    fast_burn = 20 * budget_errors  # above 14.4x
    medium_burn = 8 * budget_errors  # between 6x and 14.4x: only the 6 h condition holds
    slow_errors, slow_latency = 2 * budget_errors, 3 * budget_slow  # above 1x, below 6x
    total = 1000.0
    tests = [
        {
            "name": "fast 5xx burn (20x budget): the availability page fires",
            "interval": "1m",
            "input_series": _traffic(
                options,
                ok=total * (1 - fast_burn),
                failed=total * fast_burn,
                fast=total * (1 - fast_burn),
                steps=180,
            ),
            "alert_rule_test": expect("70m", {page_a: True, page_l: False}),
        },
        {
            "name": "6x-14.4x 5xx burn: only the 6 h / 30 min condition pages",
            "interval": "1m",
            "input_series": _traffic(
                options,
                ok=total * (1 - medium_burn),
                failed=total * medium_burn,
                fast=total * (1 - medium_burn),
                steps=400,
            ),
            "alert_rule_test": expect("370m", {page_a: True}),
        },
        {
            "name": "slow burn of both budgets (2x errors, 3x slow): tickets, no page",
            "interval": "5m",
            "input_series": _traffic(
                options,
                ok=total * (1 - slow_errors),
                failed=total * slow_errors,
                fast=total * (1 - slow_errors - slow_latency),
                steps=900,
            ),
            "alert_rule_test": expect(
                "73h", {ticket_a: True, ticket_l: True, page_a: False, page_l: False}
            ),
        },
        {
            "name": "healthy traffic: no alert",
            "interval": "1m",
            "input_series": _traffic(options, ok=total, failed=0, fast=total, steps=180),
            "alert_rule_test": expect(
                "70m", {page_a: False, ticket_a: False, page_l: False, ticket_l: False}
            ),
        },
        {
            "name": "every request slower than the latency threshold: the latency page fires",
            "interval": "1m",
            "input_series": _traffic(options, ok=total, failed=0, fast=0, steps=180),
            "alert_rule_test": expect("70m", {page_l: True, page_a: False}),
        },
    ]
    # Rules are evaluated every 5 minutes: the 3-day case then takes seconds, not minutes, and
    # every `for` (2m, 15m) still elapses before the evaluation times above.
    if options.min_requests > 0:
        # 70 minutes at min_requests / 200 per minute: about a third of the guard's minimum.
        trickle = options.min_requests / 400
        tests.append(
            {
                "name": "half the requests fail but there are too few of them: the guard keeps quiet",
                "interval": "1m",
                "input_series": _traffic(
                    options, ok=trickle, failed=trickle, fast=trickle, steps=180
                ),
                "alert_rule_test": expect("70m", {page_a: False, page_l: False}),
            }
        )
    return {"rule_files": [rule_file], "evaluation_interval": "5m", "tests": tests}
