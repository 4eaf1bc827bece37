"""Each dashboard type-checks against `@grafana/schema` of Grafana 12 and 13, panel by panel.

tools/package.json installs both majors side by side (npm aliases `@grafana/schema-12` and
`@grafana/schema-13`). The JSON is inlined as object literals, so TypeScript also rejects unknown
properties and checks string enums. Every panel is checked with its own plugin's `Options` and
`FieldConfig` types (timeseries, stat, table, heatmap, logs, text), not only as a generic panel:
classic panels as `Panel<Options, FieldConfig>`, v2 elements through their `vizConfig.spec`.
Grafana 13's v2 is `dashboard.grafana.app/v2`; Grafana 12's is the `v2beta1` resource.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from obs.dashboards.files import DASHBOARDS, render_files

from .conftest import TOOLS

#: The panel plugins obs uses, and the module of their generated option types.
PLUGINS = {
    "timeseries": "TimeSeriesPanelCfg",
    "stat": "StatPanelCfg",
    "table": "TablePanelCfg",
    "heatmap": "HeatmapPanelCfg",
    "logs": "LogsPanelCfg",
    "text": "TextPanelCfg",
}
MAJORS = ("12", "13")
#: The v2 API version each major serves and the folder of its types.
V2_OF = {"12": "v2beta1", "13": "v2"}


def typecheck(
    tsc: str, sources: dict[str, str], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    for name, source in sources.items():
        (tmp_path / name).write_text(source)
    # Resolve the packages through their own `exports`, as a TypeScript project would.
    (tmp_path / "node_modules").symlink_to(TOOLS, target_is_directory=True)
    (tmp_path / "package.json").write_text('{"type": "module"}')
    config = {
        "compilerOptions": {
            "strict": True,
            "noEmit": True,
            "module": "nodenext",
            "moduleResolution": "nodenext",
            "target": "es2022",
            "skipLibCheck": True,
            "types": [],
        },
        "files": sorted(sources),
    }
    (tmp_path / "tsconfig.json").write_text(json.dumps(config))
    return subprocess.run(
        [tsc, "-p", str(tmp_path / "tsconfig.json")],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


#: TypeScript enums do not accept string literals; `Lit<T>` turns every string enum inside *T*
#: into the union of its values (`${StackingMode}` is "none" | "normal" | "percent"), keeping
#: every property, optionality and excess-property check.
LIT = (
    "type Lit<T> = T extends string ? `${T}` : T extends readonly (infer U)[] ? Lit<U>[] "
    ": T extends object ? { [K in keyof T]: Lit<T[K]> } : T;\n"
)


def _has_field_config(major: str, plugin: str) -> bool:
    types = TOOLS / "@grafana" / f"schema-{major}" / "dist/types/raw/composable" / plugin
    return "export interface FieldConfig" in (types / "panelcfg/x/types.gen.d.ts").read_text()


def _imports(major: str) -> str:
    package = f"@grafana/schema-{major}"
    lines = [f'import type {{ Dashboard, RowPanel }} from "{package}";']
    for plugin, module in PLUGINS.items():
        path = f"{package}/dist/esm/raw/composable/{plugin}/panelcfg/x/{module}_types.gen"
        lines.append(f'import type * as cfg_{plugin} from "{path}";')
        # Plugins without custom field options (stat, text, logs) export no FieldConfig.
        custom = f"cfg_{plugin}.FieldConfig" if _has_field_config(major, plugin) else "{}"
        lines.append(f"type {plugin}_custom = {custom};")
    lines.append(f'import type * as v2 from "{package}/apis/dashboard.grafana.app/{V2_OF[major]}";')
    return "\n".join(lines) + "\n" + LIT


def _viz_checks(ident: str, plugin: str, options: Any, custom: Any) -> list[str]:
    """A panel's options and custom field config, typed as its plugin's `Options` and `FieldConfig`."""
    assert plugin in PLUGINS, f"no schema check for panel type {plugin!r}; add it to PLUGINS"
    return [
        f"export const {ident}_options: Lit<cfg_{plugin}.Options> = {json.dumps(options, indent=2)};",
        f"export const {ident}_custom: Lit<{plugin}_custom> = {json.dumps(custom, indent=2)};",
    ]


def classic_source(variable: str, dashboard: dict[str, Any]) -> str:
    """The dashboard as a `Dashboard`; each panel's options and field config as its plugin's.

    `Panel<Options, FieldConfig>` types only the custom field config (its `options` stay a
    record), so options and `fieldConfig.defaults.custom` are checked on their own.
    """
    checks = []
    for index, panel in enumerate(dashboard.get("panels", [])):
        if panel["type"] == "row":
            checks.append(
                f"export const {variable}_row_{index}: Lit<RowPanel> = {json.dumps(panel)};"
            )
            continue
        custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {})
        checks += _viz_checks(
            f"{variable}_panel_{index}", panel["type"], panel.get("options", {}), custom
        )
    dashboard_check = (
        f"export const {variable}: Lit<Dashboard> = {json.dumps(dashboard, indent=2)};"
    )
    return "\n".join([*checks, dashboard_check, ""])


def v2_source(variable: str, resource: dict[str, Any], version: str) -> str:
    """The v2 spec as `v2.Spec`, and every element's options and field config as its plugin's."""
    checks = []
    for name, element in resource["spec"]["elements"].items():
        viz = element["spec"]["vizConfig"]
        custom = viz["spec"]["fieldConfig"]["defaults"].get("custom", {})
        checks += _viz_checks(
            f"{variable}_{name.replace('-', '_')}", viz["group"], viz["spec"]["options"], custom
        )
    header = {
        "apiVersion": resource["apiVersion"],
        "kind": resource["kind"],
        "name": resource["metadata"]["name"],
    }
    return "\n".join(
        [
            *checks,
            f"export const {variable}: Lit<v2.Spec> = {json.dumps(resource['spec'], indent=2)};",
            f'export const {variable}_header: {{ apiVersion: "dashboard.grafana.app/{version}"; '
            f'kind: "Dashboard"; name: string }} = {json.dumps(header)};',
            "",
        ]
    )


def _sources(major: str, fmt: str) -> dict[str, str]:
    files = render_files(fmt=fmt)
    sources = {}
    for name in DASHBOARDS:
        variable = name.split(".")[0].replace("-", "_")
        data = json.loads(files[name])
        body = (
            classic_source(variable, data) if fmt == "classic" else v2_source(variable, data, fmt)
        )
        sources[f"{variable}.ts"] = _imports(major) + body
    return sources


def test_both_schema_majors_are_installed() -> None:
    for major in MAJORS:
        package = json.loads((TOOLS / "@grafana" / f"schema-{major}" / "package.json").read_text())
        assert package["version"].startswith(f"{major}."), package["version"]


@pytest.mark.parametrize("major", MAJORS)
def test_classic_dashboards_type_check_panel_by_panel(tsc: str, major: str, tmp_path: Path) -> None:
    result = typecheck(tsc, _sources(major, "classic"), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("major", MAJORS)
def test_v2_resources_type_check_panel_by_panel(tsc: str, major: str, tmp_path: Path) -> None:
    result = typecheck(tsc, _sources(major, V2_OF[major]), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def _first_timeseries(dashboard: dict[str, Any]) -> dict[str, Any]:
    return next(p for p in dashboard["panels"] if p["type"] == "timeseries")


# TypeScript reports one error per declaration, so each case breaks one thing.
CLASSIC_DEFECTS = {
    "legend placement": (
        lambda d: _first_timeseries(d)["options"]["legend"].update(placement="sideways"),
        "sideways",
    ),
    "fill opacity": (
        lambda d: _first_timeseries(d)["fieldConfig"]["defaults"]["custom"].update(
            fillOpacity="lots"
        ),
        "not assignable to type 'number",
    ),
    "link type": (lambda d: d["links"][0].update(type="weblink"), "weblink"),
    "refresh": (lambda d: d.update(refresh=30), "not assignable to type 'string"),
}


@pytest.mark.parametrize("defect", sorted(CLASSIC_DEFECTS))
def test_the_type_check_rejects_a_broken_classic_dashboard(
    tsc: str, defect: str, tmp_path: Path
) -> None:
    """Per-panel options, custom field config and the dashboard level are each really checked."""
    overview = json.loads(render_files()["http-overview.json"])
    breaks, message = CLASSIC_DEFECTS[defect]
    breaks(overview)
    result = typecheck(
        tsc, {"broken.ts": _imports("13") + classic_source("broken", overview)}, tmp_path
    )
    assert result.returncode != 0
    assert result.stdout.count("error TS") == 1 and message in result.stdout, result.stdout


V2_DEFECTS = {
    "classic field": (lambda r: r["spec"].update(schemaVersion=42), "schemaVersion"),
    "cursor sync": (lambda r: r["spec"].update(cursorSync=1), "DashboardCursorSync"),
    "panel option": (
        lambda r: next(
            e
            for e in r["spec"]["elements"].values()
            if e["spec"]["vizConfig"]["group"] == "timeseries"
        )["spec"]["vizConfig"]["spec"]["options"]["tooltip"].update(mode="everything"),
        "everything",
    ),
}


@pytest.mark.parametrize("defect", sorted(V2_DEFECTS))
def test_the_type_check_rejects_a_broken_v2_resource(tsc: str, defect: str, tmp_path: Path) -> None:
    resource = json.loads(render_files(fmt="v2")["http-overview.json"])
    breaks, message = V2_DEFECTS[defect]
    breaks(resource)
    result = typecheck(
        tsc, {"broken.ts": _imports("13") + v2_source("broken", resource, "v2")}, tmp_path
    )
    assert result.returncode != 0
    assert result.stdout.count("error TS") == 1 and message in result.stdout, result.stdout
