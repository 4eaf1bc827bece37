"""Every PromQL expression, in the dashboards and the alerts, passes promtool."""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from obs import metrics
from obs.dashboards import DashboardOptions, render_files
from obs.dashboards import promql as q
from obs.dashboards.render import dumps_yaml

from .exprs import prometheus_exprs, substitute

VALUES = {"job": "api|web", "instance": ".+", "http_route": ".+", "level": ".*"}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=240, check=False)


def test_alert_rules_pass_check_and_unit_tests(
    promtool: str, generated: dict[str, str], tmp_path: Path
) -> None:
    for name in ("alerts.yml", "alerts_test.yml"):
        (tmp_path / name).write_text(generated[name])
    checked = run(promtool, "check", "rules", "alerts.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run(promtool, "test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_alert_unit_tests_can_fail(
    promtool: str, generated: dict[str, str], tmp_path: Path
) -> None:
    """The unit tests are not vacuous: expecting no alert on failing traffic fails them."""
    tests = yaml.safe_load(generated["alerts_test.yml"])
    tests["tests"][0]["alert_rule_test"][0]["exp_alerts"] = []
    (tmp_path / "alerts.yml").write_text(generated["alerts.yml"])
    (tmp_path / "alerts_test.yml").write_text(dumps_yaml(tests))
    tested = run(promtool, "test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert tested.returncode != 0


def test_every_dashboard_expression_passes_promtool_check_rules(
    promtool: str, dashboards: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    exprs = [expr for d in dashboards.values() for _, expr in prometheus_exprs(d)]
    rules = [
        {"record": f"obs:dashboard_expr_{i}", "expr": substitute(expr, VALUES)}
        for i, expr in enumerate(exprs)
    ]
    assert len(rules) > 25
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(dumps_yaml({"groups": [{"name": "dashboards", "rules": rules}]}))
    checked = run(promtool, "check", "rules", path.name, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules)} rules found" in checked.stdout


def test_promtool_check_catches_a_broken_expression(promtool: str, tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(
        dumps_yaml(
            {"groups": [{"name": "x", "rules": [{"record": "a:b", "expr": "sum(rate(x[1m]"}]}]}
        )
    )
    assert run(promtool, "check", "rules", path.name, cwd=tmp_path).returncode != 0


def test_every_alert_has_a_firing_and_a_quiet_case(generated: dict[str, str]) -> None:
    rules = yaml.safe_load(generated["alerts.yml"])
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert len(alerts) == 4
    cases = [
        c
        for t in yaml.safe_load(generated["alerts_test.yml"])["tests"]
        for c in t["alert_rule_test"]
    ]
    firing = {c["alertname"] for c in cases if c["exp_alerts"]}
    quiet = {c["alertname"] for c in cases if not c["exp_alerts"]}
    assert firing == alerts and quiet == alerts
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert "/metrics" not in rule["expr"] and "path!=" not in rule["expr"]
            if "alert" in rule:
                assert rule["annotations"]["runbook_url"].startswith(
                    "http://localhost:3000/d/obs-http?viewPanel="
                )
                assert rule["annotations"]["dashboard"].startswith(
                    "http://localhost:3000/d/obs-http"
                )
                assert "requests_record" not in rule["expr"] and ">= 100" in rule["expr"]


def test_removing_the_low_traffic_guard_fails_its_case(
    promtool: str, generated: dict[str, str], tmp_path: Path
) -> None:
    """The guard case is not vacuous: without the guard the half-failing trickle pages."""
    rules = yaml.safe_load(generated["alerts.yml"])
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["expr"] = rule["expr"].replace(">= 100", ">= 0")
    (tmp_path / "alerts.yml").write_text(dumps_yaml(rules))
    (tmp_path / "alerts_test.yml").write_text(generated["alerts_test.yml"])
    tested = run(promtool, "test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert tested.returncode != 0
    assert "too few of them" in tested.stdout + tested.stderr


def test_options_change_objectives_and_links(promtool: str, tmp_path: Path) -> None:
    """Other objectives and URLs give rules and cases that still pass promtool."""
    options = DashboardOptions(
        availability_slo=0.99, latency_slo_seconds=0.25, latency_slo_ratio=0.999,
        min_requests=10, grafana_url="https://grafana.example.org/", runbook_url="https://wiki.example.org/slo",
    )  # fmt: skip
    files = render_files(options)
    assert 'le="0.25"' in files["alerts.yml"]
    assert "https://grafana.example.org/d/obs-http" in files["alerts.yml"]
    assert (
        "https://wiki.example.org/slo#obsavailabilitybudgetburnpage" in files["alerts.yml"].lower()
    )
    for name in ("alerts.yml", "alerts_test.yml"):
        (tmp_path / name).write_text(files[name])
    tested = run(promtool, "test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_bounded_quantiles_resolve_below_the_first_bucket(promtool: str, tmp_path: Path) -> None:
    """Empty bodies give p90 = 0 (not 90 B); 0.8 ms requests give p50 <= 1.6 ms (not 2.5 ms)."""
    size, duration = metrics.REQUEST_BODY_SIZE, metrics.REQUEST_DURATION
    series = []
    for le in metrics.SIZE_BUCKETS:
        series.append({"series": f'{size}_bucket{{le="{le!r}"}}', "values": "0+10x20"})
    series += [
        {"series": f'{size}_bucket{{le="+Inf"}}', "values": "0+10x20"},
        {"series": f"{size}_count", "values": "0+10x20"},
        {"series": f"{size}_sum", "values": "0+0x20"},
    ]
    for le in metrics.DURATION_BUCKETS:
        series.append({"series": f'{duration}_bucket{{le="{le!r}"}}', "values": "0+10x20"})
    series += [
        {"series": f'{duration}_bucket{{le="+Inf"}}', "values": "0+10x20"},
        {"series": f"{duration}_count", "values": "0+10x20"},
        {"series": f"{duration}_sum", "values": "0+0.008x20"},
    ]
    p90_size = q.bounded_quantile(0.9, size, (), window="5m")
    p50_duration = q.bounded_quantile(0.5, duration, (), window="5m")
    raw_p50 = q.quantile(0.5, duration, (), window="5m")
    tests = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {"expr": p90_size, "eval_time": "10m", "exp_samples": [{"labels": "{}", "value": 0}]},
                    {"expr": f"({p50_duration}) <= bool 0.00161", "eval_time": "10m",
                     "exp_samples": [{"labels": "{}", "value": 1}]},
                    {"expr": raw_p50, "eval_time": "10m", "exp_samples": [{"labels": "{}", "value": 0.0025}]},
                ],
            }
        ],
    }  # fmt: skip
    (tmp_path / "quantiles_test.yml").write_text(dumps_yaml(tests))
    tested = run(promtool, "test", "rules", "quantiles_test.yml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr


#: A spread of accepted options: objectives from the lowest accepted to the highest, and
#: low-traffic guards from one request to 100000 (the fixed rates used to fail for most).
SPREAD = [
    {"availability_slo": 0.9},
    {"availability_slo": 0.93},
    {"availability_slo": 0.95},
    {"availability_slo": 0.99},
    {"availability_slo": 0.999},
    {"availability_slo": 0.99999},
    {"availability_slo": 0.99999999},
    {"latency_slo_seconds": 0.005, "latency_slo_ratio": 0.9},
    {"latency_slo_seconds": 0.5, "latency_slo_ratio": 0.99},
    {"latency_slo_seconds": 10.0, "latency_slo_ratio": 0.9999},
    {"min_requests": 0},
    {"min_requests": 1},
    {"min_requests": 100000},
    {"availability_slo": 0.9, "latency_slo_ratio": 0.9, "min_requests": 1},
    {"availability_slo": 0.99999999, "latency_slo_ratio": 0.99999999, "min_requests": 10**9},
]


def _without_guard(rules_text: str) -> str:
    rules = yaml.safe_load(rules_text)
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["expr"] = re.sub(r">= \d+", ">= 0", rule["expr"])
    return dumps_yaml(rules)


def test_alert_tests_pass_promtool_for_a_spread_of_options(promtool: str, tmp_path: Path) -> None:
    """Every case holds for any accepted objective and guard (promtool runs two at a time, a
    few seconds each); the guard case is not vacuous: without the guard it fails."""
    jobs = []
    for i, kwargs in enumerate(SPREAD):
        files = render_files(DashboardOptions(**kwargs))  # type: ignore[arg-type]
        assert "-" not in "".join(
            s["values"]
            for t in yaml.safe_load(files["alerts_test.yml"])["tests"]
            for s in t["input_series"]
        )
        folder = tmp_path / str(i)
        folder.mkdir()
        (folder / "alerts.yml").write_text(files["alerts.yml"])
        (folder / "alerts_test.yml").write_text(files["alerts_test.yml"])
        jobs.append((kwargs, folder, True))
        tests = yaml.safe_load(files["alerts_test.yml"])
        guard = [t for t in tests["tests"] if "too few" in t["name"]]
        assert bool(guard) == (kwargs.get("min_requests", 100) > 0)
        if guard:
            unguarded = tmp_path / f"{i}-unguarded"
            unguarded.mkdir()
            (unguarded / "alerts.yml").write_text(_without_guard(files["alerts.yml"]))
            (unguarded / "alerts_test.yml").write_text(dumps_yaml({**tests, "tests": guard}))
            jobs.append((kwargs, unguarded, False))

    def outcome(job: tuple[dict[str, object], Path, bool]) -> str | None:
        kwargs, folder, passes = job
        tested = run(promtool, "test", "rules", "alerts_test.yml", cwd=folder)
        if (tested.returncode == 0) != passes:
            return f"{kwargs} ({folder.name}): {tested.stdout[-600:]}{tested.stderr[-600:]}"
        return None

    with ThreadPoolExecutor(max_workers=2) as pool:
        failures = [f for f in pool.map(outcome, jobs) if f]
    assert not failures, "\n".join(failures)
