"""The defects the live check found stay fixed: ids, links, colours, variables, filters."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import timeseries

from obs.dashboards import DashboardOptions, panels, render_files
from obs.dashboards.logs import logql
from obs.dashboards.render import DuplicatePanelIdError, dashboard_data


def _all_panels(panels_: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for panel in panels_:
        found.append(panel)
        found += _all_panels(panel.get("panels", []))
    return found


def test_every_panel_and_row_id_is_unique_and_positive(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    for name, dashboard in dashboards.items():
        ids = [panel["id"] for panel in _all_panels(dashboard["panels"])]
        assert all(i > 0 for i in ids), (name, ids)
        assert len(ids) == len(set(ids)), (name, ids)
    rows = [p for p in dashboards["http-overview.json"]["panels"] if p["type"] == "row"]
    assert len(rows) >= 4


def test_two_equal_explicit_ids_are_an_error() -> None:
    builder = (
        db.Dashboard("t").with_panel(timeseries.Panel().id(5)).with_panel(timeseries.Panel().id(5))
    )
    with pytest.raises(DuplicatePanelIdError, match=r"panel id\(s\) \[5\]"):
        dashboard_data(builder)


def test_every_link_into_the_logs_carries_the_service() -> None:
    files = render_files(DashboardOptions(service_name="shop eu"))
    links = [url for text in files.values() for url in re.findall(r"/d/obs-logs\?[^\"'\s]*", text)]
    assert len(links) > 8
    for url in links:
        assert "var-service=shop+eu" in url, url


def test_slowest_routes_link_keeps_datasource_job_and_instance(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    table = next(p for p in dashboards["http-overview.json"]["panels"] if p["type"] == "table")
    (link,) = table["fieldConfig"]["defaults"]["links"]
    for carried in ("${datasource:queryparam}", "${job:queryparam}", "${instance:queryparam}",
                    "${__url_time_range}", "var-http_route=${__data.fields.http_route}"):  # fmt: skip
        assert carried in link["url"], carried


def test_status_classes_have_fixed_colours(dashboards: dict[str, dict[str, Any]]) -> None:
    rate = next(
        p
        for p in dashboards["http-overview.json"]["panels"]
        if p["title"].startswith("Request rate")
    )
    colours = {
        o["matcher"]["options"]: o["properties"][0]["value"]["fixedColor"]
        for o in rate["fieldConfig"]["overrides"]
    }
    assert colours == panels.STATUS_CLASS_COLOURS
    codes = next(
        p for p in dashboards["route-drilldown.json"]["panels"] if "status code" in p["title"]
    )
    by_code = {
        o["matcher"]["options"]: o["properties"][0]["value"]["fixedColor"]
        for o in codes["fieldConfig"]["overrides"]
        if o["matcher"]["id"] == "byRegexp"
    }
    assert by_code == {f"^{c[0]}..$": colour for c, colour in panels.STATUS_CLASS_COLOURS.items()}


def test_the_drill_down_opens_on_one_route_not_all(dashboards: dict[str, dict[str, Any]]) -> None:
    route = {v["name"]: v for v in dashboards["route-drilldown.json"]["templating"]["list"]}[
        "http_route"
    ]
    assert route["includeAll"] is False and route["multi"] is False
    assert "current" not in route or route["current"].get("value") != "$__all"
    overview = {v["name"]: v for v in dashboards["http-overview.json"]["templating"]["list"]}
    assert overview["http_route"]["includeAll"] is True


# Grafana's `:regex` format escapes a value like this before it reaches Loki (RE2, same syntax).
def _grafana_regex(value: str) -> str:
    return re.sub(r"([\\^$.|?*+()\[\]{}/])", r"\\\1", value)


def _line_filter(request_id: str) -> re.Pattern[str]:
    pattern = re.search(r"\|~ `([^`]*)`", logql())
    assert pattern
    return re.compile(pattern.group(1).replace("${request_id:regex}", _grafana_regex(request_id)))


LINES = [
    json.dumps({"request_id": rid, "event": "request", "level": "info"}, separators=(",", ":"))
    for rid in ("ab-100", "ab-1000", "x.y+z", "xzy+z")
]


def test_the_request_id_filter_is_exact() -> None:
    assert [line for line in LINES if _line_filter("ab-100").search(line)] == [LINES[0]]
    assert [line for line in LINES if _line_filter("x.y+z").search(line)] == [LINES[2]]


def test_an_empty_request_id_filters_nothing() -> None:
    assert all(_line_filter("").search(line) for line in LINES)


def test_public_panels_build_a_dashboard_of_a_team() -> None:
    options = DashboardOptions(service_name="shop")
    builder = (
        db.Dashboard("Shop / checkout")
        .variables(panels.target_variables(options))
        .with_panel(panels.request_rate(options))
        .with_panel(panels.latency_percentiles(options))
        .with_panel(panels.slo_burn_rates(options))
    )
    data = dashboard_data(builder)
    assert [p["id"] for p in data["panels"]] == [1, 2, 3]
    assert set(panels.__all__) <= set(dir(panels))
