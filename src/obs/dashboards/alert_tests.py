"""``promtool test rules`` cases for :mod:`obs.dashboards.alerts`: each alert fires and stays quiet.

The input series are what obs exports (the duration histogram's ``_count`` and the ``le`` bucket
of the latency threshold). Every case's traffic is derived from the options, so that exactly
the intended burn-rate condition holds for any accepted objective and low-traffic guard: a fast
burn, a 6x burn only the 6 h window sees, a slow burn only the 3-day tickets see, healthy
traffic, all-slow traffic, and failing traffic below the guard. Requests per step are integers
(the counters are exact); the guard case's trickle is the only fraction, written exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from obs.dashboards.alerts import (
    ALERT_GROUP,
    JOB_TEMPLATE,
    PAGE,
    TICKET,
    WINDOWS,
    BurnWindow,
    alert_rules,
    le_value,
    objectives,
)
from obs.dashboards.options import DashboardOptions
from obs.metrics import METHOD, REQUEST_DURATION, ROUTE, STATUS

JOB = "api"
#: The long window holds at least this many times the guard's minimum where an alert must fire.
GUARD_MARGIN = 2


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    rendered = ", ".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{name}{{{rendered}}}", "values": values}


def _number(value: float) -> str:
    """*value* exactly as promtool reads it back: ``1000``, ``0.25`` (never ``:g``'s rounding)."""
    if value < 0 or not math.isfinite(value):
        raise ValueError(f"a counter increment must be finite and >= 0, not {value!r}")
    return str(int(value)) if value == int(value) else repr(value)


@dataclass(frozen=True, slots=True)
class Traffic:
    """Requests per step: *requests* in all, *failed* of them 5xx, *slow* of them over the SLO.

    Slow requests are the failed ones first (a timeout is both), then successful ones.
    """

    requests: float
    failed: float = 0
    slow: float = 0

    def series(self, options: DashboardOptions, steps: int) -> list[dict[str, str]]:
        """Counters growing by this traffic every step, for *steps* steps."""
        duration = options.metric(REQUEST_DURATION)
        labels = {"job": JOB, METHOD: "GET", ROUTE: "/orders/{id}"}
        le = {"le": le_value(options.latency_slo_seconds)}
        slow_failed = min(self.slow, self.failed)
        ok = self.requests - self.failed
        counts = {"200": (ok, ok - (self.slow - slow_failed))}
        if self.failed:
            counts["500"] = (self.failed, self.failed - slow_failed)
        series = []
        for status, (count, fast) in counts.items():
            series.append(
                _series(f"{duration}_count", {**labels, STATUS: status}, _values(count, steps))
            )
            series.append(
                _series(
                    f"{duration}_bucket", {**labels, STATUS: status, **le}, _values(fast, steps)
                )
            )
        return series


def _values(increment: float, steps: int) -> str:
    return f"0+{_number(increment)}x{steps}"


def _nice_ceiling(value: float) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is >= *value* (readable test files)."""
    value = max(value, 1.0)
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return int(step * power)
    raise AssertionError("unreachable")  # pragma: no cover


def _requests(low: float, high: float, at_least: float) -> int:
    """Requests per step, >= *at_least*, with room for a whole number of bad ones strictly
    between the ratios *low* and *high* (at least four integers fit between them)."""
    return _nice_ceiling(max(at_least, 4 / (high - low)))


def _bad(requests: int, low: float, high: float) -> int:
    """A whole number of bad requests among *requests* whose ratio lies in (*low*, *high*].

    *high* is included only when it is 1 (every request bad). The midpoint is at least two
    requests from either end (see :func:`_requests`), far beyond any float rounding.
    """
    bad = round((low + high) / 2 * requests)
    if not low < bad / requests < high:  # pragma: no cover - excluded by _requests
        raise AssertionError(f"{bad}/{requests} is not within ({low}, {high})")
    return bad


def _guarded(options: DashboardOptions, windows: tuple[BurnWindow, ...], case: Case) -> float:
    """Requests per step for every long window of *windows* to hold GUARD_MARGIN times the
    guard's minimum at the case's evaluation time (a window holds only the steps seen so far)."""
    steps = min(
        min(WINDOWS[w.long_window], case.eval_seconds) // case.interval_seconds for w in windows
    )
    return GUARD_MARGIN * options.min_requests / steps


@dataclass(frozen=True, slots=True)
class Case:
    """When a case is evaluated, how often its series are sampled and for how many steps."""

    interval: str
    interval_seconds: int
    eval_time: str
    eval_seconds: int
    steps: int


#: The page cases: 70 minutes of data, more than the 1 h window and short of the 6 h one.
PAGE_CASE = Case("1m", 60, "70m", 70 * 60, 180)
#: The 6 h case: the 6 h window full, evaluated at 370 minutes.
SIX_HOURS_CASE = Case("1m", 60, "370m", 370 * 60, 400)
#: The 3-day case: 5-minute samples keep it to seconds of promtool time.
THREE_DAYS_CASE = Case("5m", 300, "73h", 73 * 3600, 900)


def _burn_range(budget: float, above: float, below: float | None) -> tuple[float, float]:
    """Bad ratios above *above* x budget and at most *below* x budget (or 1)."""
    low = above * budget
    high = 1.0 if below is None else min(1.0, below * budget)
    if not low < high:
        raise ValueError(f"no bad ratio lies between {above}x and {below}x of budget {budget}")
    return low, high


def alert_tests(options: DashboardOptions, *, rule_file: str = "alerts.yml") -> dict[str, Any]:
    """The content of ``alerts_test.yml``."""
    rules = {
        rule["alert"]: rule
        for group in alert_rules(options)["groups"]
        if group["name"] == ALERT_GROUP
        for rule in group["rules"]
    }
    availability, latency = objectives(options)
    errors_budget, slow_budget = availability.budget, latency.budget

    def expect(case: Case, firing: dict[str, bool]) -> list[dict[str, Any]]:
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
            checks.append({"eval_time": case.eval_time, "alertname": name, "exp_alerts": expected})
        return checks

    def test(name: str, case: Case, traffic: Traffic, firing: dict[str, bool]) -> dict[str, Any]:
        return {
            "name": name,
            "interval": case.interval,
            "input_series": traffic.series(options, case.steps),
            "alert_rule_test": expect(case, firing),
        }

    page_a = f"{availability.alert_prefix}{PAGE.suffix}"
    ticket_a = f"{availability.alert_prefix}{TICKET.suffix}"
    page_l = f"{latency.alert_prefix}{PAGE.suffix}"
    ticket_l = f"{latency.alert_prefix}{TICKET.suffix}"
    fast, six_hours = PAGE.windows
    (three_days,) = TICKET.windows
    page_guard = _guarded(options, PAGE.windows, PAGE_CASE)

    # Fast burn: up to twice the fastest page threshold that a ratio <= 1 can exceed (below a
    # 93.06 % objective 14.4x the budget is over 1 and the 6x condition pages on its own).
    burn = fast if fast.factor * errors_budget < 1 else six_hours
    low, high = _burn_range(errors_budget, burn.factor, 2 * burn.factor)
    requests = _requests(low, high, page_guard)
    fast_burn = Traffic(requests, failed=_bad(requests, low, high))

    low, high = _burn_range(errors_budget, six_hours.factor, fast.factor)
    requests = _requests(low, high, _guarded(options, (six_hours,), SIX_HOURS_CASE))
    medium_burn = Traffic(requests, failed=_bad(requests, low, high))

    errors_low, errors_high = _burn_range(errors_budget, three_days.factor, six_hours.factor)
    slow_low, slow_high = _burn_range(slow_budget, three_days.factor, six_hours.factor)
    requests = max(
        _requests(errors_low, errors_high, _guarded(options, TICKET.windows, THREE_DAYS_CASE)),
        _requests(slow_low, slow_high, 1),
    )
    slow_burn = Traffic(
        requests,
        failed=_bad(requests, errors_low, errors_high),
        slow=_bad(requests, slow_low, slow_high),
    )
    steady = _nice_ceiling(page_guard)

    def times(traffic: Traffic, what: float, budget: float) -> str:
        return f"{what / traffic.requests / budget:.3g}x"

    tests = [
        test(
            f"fast 5xx burn ({times(fast_burn, fast_burn.failed, errors_budget)} budget): "
            "the availability page fires",
            PAGE_CASE,
            fast_burn,
            {page_a: True, page_l: False},
        ),
        test(
            f"{six_hours.factor:g}x-{fast.factor:g}x 5xx burn "
            f"({times(medium_burn, medium_burn.failed, errors_budget)}): only the "
            f"{six_hours.long_window} / {six_hours.short_window} condition pages",
            SIX_HOURS_CASE,
            medium_burn,
            {page_a: True},
        ),
        test(
            f"slow burn of both budgets ({times(slow_burn, slow_burn.failed, errors_budget)} "
            f"errors, {times(slow_burn, slow_burn.slow, slow_budget)} slow): tickets, no page",
            THREE_DAYS_CASE,
            slow_burn,
            {ticket_a: True, ticket_l: True, page_a: False, page_l: False},
        ),
        test(
            "healthy traffic: no alert",
            PAGE_CASE,
            Traffic(steady),
            {page_a: False, ticket_a: False, page_l: False, ticket_l: False},
        ),
        test(
            "every request slower than the latency threshold: the latency page fires",
            PAGE_CASE,
            Traffic(steady, slow=steady),
            {page_l: True, page_a: False},
        ),
    ]
    # Rules are evaluated every 5 minutes: the 3-day case then takes seconds, not minutes, and
    # every `for` (2m, 15m) still elapses before the evaluation times above.
    if options.min_requests > 0:
        # 70 minutes at min_requests / 400 per minute: under a fifth of the guard's minimum in
        # any long window. Every request fails and is slow, so without the guard both pages fire.
        trickle = options.min_requests / 400
        tests.append(
            test(
                "every request fails but there are too few of them: the guard keeps quiet",
                PAGE_CASE,
                Traffic(trickle, failed=trickle, slow=trickle),
                {page_a: False, page_l: False},
            )
        )
    return {"rule_files": [rule_file], "evaluation_interval": "5m", "tests": tests}
