from __future__ import annotations

import yaml
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, timeseries

from obs.dashboards.render import dashboard_data, dumps_json, dumps_yaml


def test_dumps_json_is_sorted_with_trailing_newline() -> None:
    assert dumps_json({"b": 1, "a": [1]}) == '{\n  "a": [\n    1\n  ],\n  "b": 1\n}\n'


def test_dashboard_data_numbers_panels_and_queries_and_drops_interval_keys() -> None:
    builder = (
        db.Dashboard("t")
        .with_variable(db.QueryVariable("job").query("label_values(job)"))
        .with_panel(timeseries.Panel().id(7).title("fixed"))
        .with_panel(
            timeseries.Panel()
            .title("auto")
            .with_target(prometheus.Dataquery().expr("up"))
            .with_target(prometheus.Dataquery().expr("up"))
        )
    )
    data = dashboard_data(builder)
    assert [p["id"] for p in data["panels"]] == [7, 1]
    assert [t["refId"] for t in data["panels"][1]["targets"]] == ["A", "B"]
    assert not {"auto", "auto_count", "auto_min"} & set(data["templating"]["list"][0])


def test_yaml_round_trips_through_a_real_parser() -> None:
    data = {
        "groups": [
            {
                "name": "g",
                "rules": [
                    {"alert": "A", "expr": 'sum(x{a="1"})\n  > 1', "for": "5m", "labels": {}},
                    {"record": "r:x", "expr": "rate(x[1m])", "tags": [], "on": "yes", "n": 3},
                ],
            }
        ],
        "flags": [True, False, None, 0.5],
        "url": "http://host:1/d?x=${__value.raw}&y=#z",
    }
    text = dumps_yaml(data, header="line one\nline two")
    assert text.startswith("# line one\n# line two\n")
    assert yaml.safe_load(text) == data
    assert text.endswith("\n") and not text.endswith("\n\n")
