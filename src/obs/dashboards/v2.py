"""Dashboard schema v2 resources (``dashboard.grafana.app/v2``), from the classic JSON model.

Grafana 13 stores dashboards as v2 resources and shows "dynamic dashboards" (rows, tabs,
auto-grid layouts) only for them; Grafana 12.4 serves the same shape as ``v2beta1``. obs builds
every dashboard once, as the classic model the SDK's builders produce (the panels' options and
field configs are the same plugin types in both schemas), and this module rewrites it: panels
become elements referenced from a grid (inside rows where the classic dashboard has row
panels), queries and transformations become kinds, variables become typed variable kinds.
The result is deterministic, like the classic output.
"""

from __future__ import annotations

from typing import Any

#: Output formats of ``obs dashboards generate --format``.
CLASSIC = "classic"
V2 = "v2"
V2BETA1 = "v2beta1"
FORMATS: tuple[str, ...] = (CLASSIC, V2, V2BETA1)
API_GROUP = "dashboard.grafana.app"

_REFRESH = {0: "never", 1: "onDashboardLoad", 2: "onTimeRangeChanged"}
_HIDE = {0: "dontHide", 1: "hideLabel", 2: "hideVariable", 3: "inControlsMenu"}
_SORT = {
    0: "disabled",
    1: "alphabeticalAsc",
    2: "alphabeticalDesc",
    3: "numericalAsc",
    4: "numericalDesc",
    5: "alphabeticalCaseInsensitiveAsc",
    6: "alphabeticalCaseInsensitiveDesc",
    7: "naturalAsc",
    8: "naturalDesc",
}
_CURSOR = {0: "Off", 1: "Crosshair", 2: "Tooltip"}
#: Grafana's default refresh picker intervals (a required field of v2 time settings).
_REFRESH_INTERVALS = ["5s", "10s", "30s", "1m", "5m", "15m", "30m", "1h", "2h", "1d"]


def _query(datasource: dict[str, Any] | None, spec: dict[str, Any]) -> dict[str, Any]:
    query: dict[str, Any] = {
        "kind": "DataQuery",
        "group": (datasource or {}).get("type", ""),
        "version": "v0",
        "spec": spec,
    }
    if datasource and datasource.get("uid"):
        query["datasource"] = {"name": datasource["uid"]}
    return query


def _transformation(config: dict[str, Any], version: str) -> dict[str, Any]:
    options = config.get("options", {})
    if version == V2BETA1:
        return {"kind": config["id"], "spec": {"id": config["id"], "options": options}}
    return {"kind": "Transformation", "group": config["id"], "spec": {"options": options}}


def _element(panel: dict[str, Any], version: str) -> dict[str, Any]:
    queries = []
    for target in panel.get("targets", []):
        spec = {k: v for k, v in target.items() if k not in ("datasource", "refId", "hide")}
        queries.append(
            {
                "kind": "PanelQuery",
                "spec": {
                    "query": _query(target.get("datasource") or panel.get("datasource"), spec),
                    "refId": target["refId"],
                    "hidden": bool(target.get("hide", False)),
                },
            }
        )
    field_config = panel.get("fieldConfig", {"defaults": {}, "overrides": []})
    return {
        "kind": "Panel",
        "spec": {
            "id": panel["id"],
            "title": panel.get("title", ""),
            "description": panel.get("description", ""),
            "links": [
                {k: v for k, v in link.items() if k in ("title", "url", "targetBlank")}
                for link in panel.get("links", [])
            ],
            "data": {
                "kind": "QueryGroup",
                "spec": {
                    "queries": queries,
                    "transformations": [
                        _transformation(t, version) for t in panel.get("transformations", [])
                    ],
                    "queryOptions": {},
                },
            },
            "vizConfig": {
                "kind": "VizConfig",
                "group": panel["type"],
                "version": panel.get("pluginVersion", ""),
                "spec": {
                    "options": panel.get("options", {}),
                    "fieldConfig": {
                        "defaults": field_config.get("defaults", {}),
                        "overrides": field_config.get("overrides", []),
                    },
                },
            },
            "transparent": bool(panel.get("transparent", False)),
        },
    }


def _grid_item(panel: dict[str, Any], row_y: int) -> dict[str, Any]:
    pos = panel.get("gridPos", {"x": 0, "y": 0, "w": 24, "h": 8})
    return {
        "kind": "GridLayoutItem",
        "spec": {
            "x": pos["x"],
            "y": pos["y"] - row_y,
            "width": pos["w"],
            "height": pos["h"],
            "element": {"kind": "ElementReference", "name": f"panel-{panel['id']}"},
        },
    }


def _layout(panels: list[dict[str, Any]]) -> dict[str, Any]:
    """A grid, or rows of grids when the classic dashboard has row panels."""
    if not any(panel["type"] == "row" for panel in panels):
        return {"kind": "GridLayout", "spec": {"items": [_grid_item(p, 0) for p in panels]}}
    rows: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    row_y = 0
    for panel in panels:
        if panel["type"] == "row":
            row_y = panel.get("gridPos", {}).get("y", 0) + 1
            current = {
                "kind": "RowsLayoutRow",
                "spec": {
                    "title": panel.get("title", ""),
                    "collapse": bool(panel.get("collapsed", False)),
                    "layout": {"kind": "GridLayout", "spec": {"items": []}},
                },
            }
            rows.append(current)
            children = panel.get("panels", [])
        else:
            children = [panel]
        if current is None:  # panels above the first row: a row without a header
            current = {
                "kind": "RowsLayoutRow",
                "spec": {
                    "title": "",
                    "hideHeader": True,
                    "layout": {"kind": "GridLayout", "spec": {"items": []}},
                },
            }
            rows.append(current)
        for child in children:
            current["spec"]["layout"]["spec"]["items"].append(_grid_item(child, row_y))
    return {"kind": "RowsLayout", "spec": {"rows": rows}}


def _variable(variable: dict[str, Any]) -> dict[str, Any]:
    kind = variable["type"]
    common = {
        "name": variable["name"],
        "current": variable.get("current", {"text": "", "value": ""}),
        "hide": _HIDE[int(variable.get("hide", 0))],
        "skipUrlSync": bool(variable.get("skipUrlSync", False)),
    }
    for key in ("label", "description"):
        if variable.get(key):
            common[key] = variable[key]
    choice = {
        "options": variable.get("options", []),
        "multi": bool(variable.get("multi", False)),
        "includeAll": bool(variable.get("includeAll", False)),
        "allowCustomValue": bool(variable.get("allowCustomValue", True)),
    }
    if variable.get("allValue"):
        choice["allValue"] = variable["allValue"]
    if kind == "query":
        query = variable.get("query", "")
        spec = {
            **common,
            **choice,
            "refresh": _REFRESH[int(variable.get("refresh", 1))],
            "query": _query(variable.get("datasource"), {"__legacyStringValue": query}),
            "definition": query,
            "regex": variable.get("regex", ""),
            "sort": _SORT[int(variable.get("sort", 0))],
        }
        return {"kind": "QueryVariable", "spec": spec}
    if kind == "datasource":
        spec = {
            **common,
            **choice,
            "pluginId": variable.get("query", ""),
            "refresh": _REFRESH[int(variable.get("refresh", 1))],
            "regex": variable.get("regex", ""),
        }
        return {"kind": "DatasourceVariable", "spec": spec}
    if kind == "custom":
        return {"kind": "CustomVariable", "spec": {**common, **choice, "query": variable["query"]}}
    if kind == "textbox":
        return {"kind": "TextVariable", "spec": {**common, "query": variable.get("query", "")}}
    raise ValueError(f"variable {variable['name']!r} of type {kind!r} has no v2 conversion")


_LINK_DEFAULTS: dict[str, Any] = {
    "icon": "",
    "tooltip": "",
    "tags": [],
    "asDropdown": False,
    "targetBlank": False,
    "includeVars": False,
    "keepTime": False,
}


def to_v2(classic: dict[str, Any], version: str = V2) -> dict[str, Any]:
    """The v2 (or v2beta1) resource of the classic dashboard data *classic*."""
    if version not in (V2, V2BETA1):
        raise ValueError(f"unknown v2 version {version!r}; use {V2!r} or {V2BETA1!r}")
    top = classic.get("panels", [])
    everything = [*top, *(child for p in top for child in p.get("panels", []))]
    elements = {
        f"panel-{panel['id']}": _element(panel, version)
        for panel in everything
        if panel["type"] != "row"
    }
    time = classic.get("time", {"from": "now-6h", "to": "now"})
    spec: dict[str, Any] = {
        "title": classic.get("title", ""),
        "description": classic.get("description", ""),
        "tags": classic.get("tags", []),
        "editable": bool(classic.get("editable", True)),
        "liveNow": bool(classic.get("liveNow", False)),
        "preload": bool(classic.get("preload", False)),
        "cursorSync": _CURSOR[int(classic.get("graphTooltip", 0))],
        "annotations": [],
        "links": [{**_LINK_DEFAULTS, **link} for link in classic.get("links", [])],
        "timeSettings": {
            "timezone": classic.get("timezone", "browser"),
            "from": time["from"],
            "to": time["to"],
            "autoRefresh": classic.get("refresh", ""),
            "autoRefreshIntervals": _REFRESH_INTERVALS,
            "hideTimepicker": False,
            "fiscalYearStartMonth": int(classic.get("fiscalYearStartMonth", 0)),
        },
        "variables": [_variable(v) for v in classic.get("templating", {}).get("list", [])],
        "elements": elements,
        "layout": _layout(top),
    }
    return {
        "apiVersion": f"{API_GROUP}/{version}",
        "kind": "Dashboard",
        "metadata": {"name": classic["uid"]},
        "spec": spec,
    }
