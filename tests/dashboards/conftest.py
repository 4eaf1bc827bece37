from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from obs.dashboards import DASHBOARDS, render_files
from obs.dashboards.files import STACK_OPTIONS

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools" / "node_modules"


def require(tool: str, path: str | None = None) -> str:
    """The path of *tool*; a missing tool fails the test (never skips) with what to run."""
    found = path if path and Path(path).exists() else shutil.which(tool)
    if not found:
        pytest.fail(f"{tool} is missing; run: bash scripts/bootstrap.sh --system", pytrace=False)
    return found


@pytest.fixture(scope="session")
def promtool() -> str:
    return require("promtool")


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    return require("prometheus")


@pytest.fixture(scope="session")
def tsc() -> str:
    require("node")
    return require("tsc", str(TOOLS / ".bin" / "tsc"))


@pytest.fixture(scope="session")
def generated() -> dict[str, str]:
    """The committed files' content: generated with the example stack's options."""
    return render_files(STACK_OPTIONS)


@pytest.fixture(scope="session")
def dashboards(generated: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {name: json.loads(generated[name]) for name in DASHBOARDS}
