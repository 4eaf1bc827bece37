"""Every PromQL expression, in the dashboards and the alerts, passes promtool."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from obs.dashboards.render import dumps_yaml

from .exprs import prometheus_exprs, substitute

VALUES = {"job": "api|web", "instance": ".+", "http_route": ".+", "level": ".*"}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


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


def test_alert_unit_tests_can_fail(promtool: str, generated: dict[str, str], tmp_path: Path) -> None:
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
    path.write_text(dumps_yaml({"groups": [{"name": "x", "rules": [{"record": "a:b", "expr": "sum(rate(x[1m]"}]}]}))
    assert run(promtool, "check", "rules", path.name, cwd=tmp_path).returncode != 0
