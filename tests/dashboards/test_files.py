from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from obs import metrics
from obs.dashboards import DASHBOARDS, DashboardOptions, render_files, stale_files, write_files
from obs.dashboards.files import STACK_OPTIONS
from obs.dashboards.runtime import RUNTIME_METRICS

from .conftest import ROOT
from .exprs import metric_names, prometheus_exprs


def test_committed_files_are_byte_identical_to_a_fresh_generation(
    generated: dict[str, str],
) -> None:
    out = ROOT / "dashboards"
    for name, text in generated.items():
        committed = out / name
        assert committed.exists(), f"{committed} missing; run: obs dashboards generate"
        assert committed.read_text(encoding="utf-8") == text, (
            f"{committed} is stale; run: obs dashboards generate --service-name shop"
        )
    assert stale_files(out, STACK_OPTIONS) == []


def test_generation_is_deterministic() -> None:
    for fmt in ("classic", "v2", "v2beta1"):
        assert render_files(fmt=fmt) == render_files(fmt=fmt)


def test_json_is_sorted_indented_and_ends_with_a_newline(generated: dict[str, str]) -> None:
    for name in DASHBOARDS:
        text = generated[name]
        assert text.endswith("}\n")
        assert (
            text
            == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
        )


def test_every_metric_name_comes_from_the_catalogue(dashboards: dict[str, dict[str, Any]]) -> None:
    catalogue = {spec.name for spec in metrics.CATALOGUE}
    allowed = {
        f"{name}{suffix}" for name in catalogue for suffix in ("", "_bucket", "_count", "_sum")
    } | set(RUNTIME_METRICS)
    used = {
        name
        for dashboard in dashboards.values()
        for _, expr in prometheus_exprs(dashboard)
        for name in metric_names(expr)
    }
    assert used <= allowed, used - allowed
    # Each dashboard-relevant metric is actually shown somewhere.
    for name in (metrics.REQUEST_DURATION, metrics.ACTIVE_REQUESTS, metrics.EXCEPTIONS, metrics.LOG_EVENTS,
                 metrics.REQUEST_BODY_SIZE, metrics.RESPONSE_BODY_SIZE):  # fmt: skip
        assert any(u.startswith(name.removesuffix("_total")) for u in used), name


def test_no_metric_name_is_spelled_out_in_the_dashboard_code() -> None:
    source = ROOT / "src" / "obs" / "dashboards"
    names = [spec.name for spec in metrics.CATALOGUE]
    for module in source.glob("*.py"):
        text = module.read_text(encoding="utf-8")
        for name in names:
            assert f'"{name}' not in text, (
                f"{module.name} repeats {name!r}; import it from obs.metrics"
            )


def test_metric_prefix_reaches_every_query() -> None:
    files = render_files(DashboardOptions(metric_prefix="shop_"))
    for name in (*DASHBOARDS, "alerts.yml", "alerts_test.yml"):
        for spec in metrics.CATALOGUE:
            assert not re.search(rf"(?<![\w]){spec.name}", files[name]), (name, spec.name)
    assert "shop_http_server_request_duration_seconds_bucket" in files["http-overview.json"]


def test_data_source_uids_and_service_are_options() -> None:
    options = DashboardOptions(
        prometheus_uid="prom-eu", loki_uid="loki-eu", pyroscope_uid="pyro", service_name="shop"
    )
    files = render_files(options)
    logs = json.loads(files["logs.json"])
    current = {v["name"]: v.get("current", {}).get("value") for v in logs["templating"]["list"]}
    assert current["datasource"] == "prom-eu"
    assert current["loki"] == "loki-eu"
    assert current["service"] == "shop"
    assert "uid: prom-eu" in files["provisioning/datasources/obs.yml"]
    assert "uid: pyro" in files["provisioning/datasources/obs.yml"]
    links = [link["title"] for link in logs["links"]]
    assert "Flame graphs in Pyroscope" in links
    assert "Pyroscope" not in json.dumps(json.loads(render_files()["logs.json"])["links"])


def test_write_files_reports_only_changes(tmp_path: Path) -> None:
    written = write_files(tmp_path)
    assert {p.relative_to(tmp_path).as_posix() for p in written} == set(render_files())
    assert write_files(tmp_path) == []
    (tmp_path / "logs.json").write_text("{}\n")
    assert stale_files(tmp_path) == [tmp_path / "logs.json"]


def test_committed_logs_dashboard_defaults_to_the_stack_service(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    """The service the example stack logs as (compose.yaml) is the logs dashboard's default."""
    import yaml

    compose = yaml.safe_load((ROOT / "examples" / "stack" / "compose.yaml").read_text())
    service = compose["services"]["app"]["environment"]["OBS_SERVICE_NAME"]
    variables = {v["name"]: v for v in dashboards["logs.json"]["templating"]["list"]}
    assert variables["service"]["current"]["value"] == service


def test_classic_schema_version_is_grafanas_latest(dashboards: dict[str, dict[str, Any]]) -> None:
    for dashboard in dashboards.values():
        assert dashboard["schemaVersion"] == 42


def test_v2_resources_carry_every_panel_in_the_layout() -> None:
    classic = render_files()
    for fmt in ("v2", "v2beta1"):
        files = render_files(fmt=fmt)
        for name in DASHBOARDS:
            resource = json.loads(files[name])
            assert resource["apiVersion"] == f"dashboard.grafana.app/{fmt}"
            assert resource["metadata"]["name"] == json.loads(classic[name])["uid"]
            layout = resource["spec"]["layout"]
            grids = (
                [row["spec"]["layout"] for row in layout["spec"]["rows"]]
                if layout["kind"] == "RowsLayout"
                else [layout]
            )
            referenced = [
                item["spec"]["element"]["name"] for g in grids for item in g["spec"]["items"]
            ]
            assert sorted(referenced) == sorted(resource["spec"]["elements"]), name
            panels = [p for p in json.loads(classic[name])["panels"] if p["type"] != "row"]
            assert len(referenced) == len(panels)


def test_headers_say_how_to_regenerate_not_where_obs_keeps_its_source() -> None:
    for name, text in render_files().items():
        if name.endswith(".yml"):
            header = text.splitlines()[0]
            assert "src/obs" not in header and "run it again with other options" in header
