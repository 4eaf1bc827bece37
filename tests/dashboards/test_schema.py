"""Each dashboard type-checks against the `Dashboard` type of Grafana's own `@grafana/schema`.

The JSON is inlined as an object literal, so TypeScript also rejects unknown properties and
checks string enums (a `resolveJsonModule` import would widen them to `string`).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from .conftest import TOOLS


def typecheck(tsc: str, sources: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    for name, source in sources.items():
        (tmp_path / name).write_text(source)
    config = {
        "compilerOptions": {
            "strict": True,
            "noEmit": True,
            "module": "nodenext",
            "moduleResolution": "nodenext",
            "target": "es2022",
            "skipLibCheck": True,
            "types": [],
            "baseUrl": ".",
            "paths": {"@grafana/schema": [str(TOOLS / "@grafana" / "schema")]},
        },
        "files": sorted(sources),
    }
    (tmp_path / "tsconfig.json").write_text(json.dumps(config))
    return subprocess.run(
        [tsc, "-p", str(tmp_path / "tsconfig.json")],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def ts_source(variable: str, dashboard: Any) -> str:
    return (
        'import type { Dashboard } from "@grafana/schema";\n'
        f"export const {variable}: Dashboard = {json.dumps(dashboard, indent=2)};\n"
    )


def test_schema_package_is_the_pinned_11_6_line() -> None:
    package = json.loads((TOOLS / "@grafana" / "schema" / "package.json").read_text())
    assert package["version"].startswith("11.6.")


def test_every_dashboard_type_checks_as_a_grafana_dashboard(
    tsc: str, dashboards: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    sources = {
        name.replace("-", "_").replace(".json", ".ts"): ts_source(name.split(".")[0].replace("-", "_"), data)
        for name, data in dashboards.items()
    }
    result = typecheck(tsc, sources, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_type_check_rejects_an_invalid_dashboard(
    tsc: str, dashboards: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    broken = json.loads(json.dumps(dashboards["logs.json"]))
    broken["links"][0]["type"] = "weblink"  # not a DashboardLinkType
    broken["refresh"] = 30  # a string in the schema
    result = typecheck(tsc, {"broken.ts": ts_source("broken", broken)}, tmp_path)
    assert result.returncode != 0
    assert "weblink" in result.stdout
    assert result.stdout.count("error TS") == 2, result.stdout
