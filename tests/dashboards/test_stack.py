"""examples/stack: everything that can be checked without containers is checked."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from obs.dashboards.provisioning import DASHBOARDS_PATH
from obs.metrics import REQUEST_BODY_SIZE, RESPONSE_BODY_SIZE
from tests.conftest import free_port

from .conftest import ROOT

STACK = ROOT / "examples" / "stack"


def load(name: str) -> dict[str, object]:
    data = yaml.safe_load((STACK / name).read_text())
    assert isinstance(data, dict)
    return data


def test_yaml_files_parse() -> None:
    for path in [
        *STACK.glob("*.yml"),
        *STACK.glob("*.yaml"),
        *(ROOT / "dashboards").rglob("*.yml"),
    ]:
        assert isinstance(yaml.safe_load(path.read_text()), dict), path


def test_prometheus_config_and_its_rules_pass_promtool(promtool: str, tmp_path: Path) -> None:
    config = load("prometheus.yml")
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    config["rule_files"] = ["alerts.yml"]  # where compose mounts it, made local
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copy(ROOT / "dashboards" / "alerts.yml", tmp_path / "alerts.yml")
    result = subprocess.run(
        [promtool, "check", "config", "prometheus.yml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    rules = yaml.safe_load((tmp_path / "alerts.yml").read_text())
    count = sum(len(group["rules"]) for group in rules["groups"])
    assert count == 19  # 15 recording rules (3 per window) and 4 alerts
    assert f"SUCCESS: {count} rules found" in result.stdout


def test_compose_mounts_the_generated_files_where_grafana_and_prometheus_look() -> None:
    services = load("compose.yaml")["services"]
    assert isinstance(services, dict)
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (STACK / source).resolve().exists(), volume
    grafana = services["grafana"]["volumes"]
    assert f"../../dashboards:{DASHBOARDS_PATH}:ro" in grafana
    assert any(v.endswith(":/etc/grafana/provisioning/datasources:ro") for v in grafana)
    assert "--enable-feature=exemplar-storage" in services["prometheus"]["command"]
    assert services["app"]["labels"]["obs.logs"] == "json"  # what promtail selects


def test_promtail_keeps_loki_labels_low_cardinality() -> None:
    stages = load("promtail.yml")["scrape_configs"][0]["pipeline_stages"]  # type: ignore[index]
    labels = next(stage["labels"] for stage in stages if "labels" in stage)
    assert set(labels) == {"service", "level"}


def test_example_app_serves_requests_and_size_histograms() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(STACK / "app.py")],
        env={**os.environ, "PORT": str(port), "OBS_SERVICE_NAME": "shop"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        response = None
        deadline = time.monotonic() + 60  # a loaded VM can take seconds to import the app
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail("the example app exited")
            try:
                response = httpx.get(f"{url}/orders/7", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert response is not None, "the example app did not start"
        assert response.status_code in (200, 502)
        assert response.headers["x-request-id"]
        exposition = httpx.get(f"{url}/metrics").text
        assert f"{REQUEST_BODY_SIZE}_count" in exposition
        assert f"{RESPONSE_BODY_SIZE}_count" in exposition
        assert 'http_route="/orders/{order_id}"' in exposition
    finally:
        proc.terminate()
        proc.wait(timeout=10)
