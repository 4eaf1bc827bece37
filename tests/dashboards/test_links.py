"""The connections hold: every link names a generated dashboard, its variables and panels."""

from __future__ import annotations

import re
from typing import Any

from obs.dashboards.options import REQUEST_ID

_LINK = re.compile(r"/d/([\w-]+)(\?[^\"'\s]*)?")


def _panel_ids(panels: list[dict[str, Any]]) -> set[int]:
    ids = set()
    for panel in panels:
        ids.add(panel["id"])
        ids |= _panel_ids(panel.get("panels", []))
    return ids


def test_every_link_resolves(
    dashboards: dict[str, dict[str, Any]], generated: dict[str, str]
) -> None:
    by_uid = {d["uid"]: d for d in dashboards.values()}
    seen = 0
    for text in generated.values():
        for uid, query in _LINK.findall(text):
            seen += 1
            assert uid in by_uid, uid
            target = by_uid[uid]
            variables = {v["name"] for v in target["templating"]["list"]}
            for name in re.findall(r"var-(\w+)=", query):
                assert name in variables, (uid, name)
            for name in re.findall(r"\$\{(\w+):queryparam\}", query):
                assert name in variables, (uid, name)
            for panel in re.findall(r"viewPanel=(\d+)", query):
                assert int(panel) in _panel_ids(target["panels"]), (uid, panel)
    assert seen > 10


def test_exemplars_link_to_the_request_logs(generated: dict[str, str]) -> None:
    datasources = generated["provisioning/datasources/obs.yml"]
    assert f"- name: {REQUEST_ID}" in datasources
    # The service comes first: with several services in Loki the exemplar opens the right one.
    assert f"/d/obs-logs?var-service=shop&var-{REQUEST_ID}=${{__value.raw}}" in datasources


def test_latency_panels_have_exemplars_and_links_to_logs(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    panels = [
        panel
        for dashboard in dashboards.values()
        for panel in dashboard["panels"]
        if "latency" in panel["title"].lower() and panel["type"] in ("timeseries", "heatmap")
    ]
    assert len(panels) >= 3
    for panel in panels:
        assert all(target["exemplar"] for target in panel["targets"]), panel["title"]
        urls = [link["url"] for link in panel["fieldConfig"]["defaults"]["links"]]
        assert any(url.startswith("/d/obs-logs?${__url_time_range}") for url in urls), panel[
            "title"
        ]
