"""The one SDK quirk obs silences (obs/dashboards/_compat.py) is still the SDK's behaviour."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grafana_foundation_sdk

from obs.dashboards._compat import CLASSIC_DEPRECATION


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_sdk_still_warns_with_that_message() -> None:
    source = Path(grafana_foundation_sdk.__file__).parent / "builders" / "dashboard.py"
    assert CLASSIC_DEPRECATION in source.read_text()
    bare = _run("import grafana_foundation_sdk.builders.dashboard")
    assert bare.returncode != 0 and CLASSIC_DEPRECATION in bare.stderr


def test_importing_obs_dashboards_first_keeps_a_team_file_quiet() -> None:
    quiet = _run(
        "import obs.dashboards\n"
        "from grafana_foundation_sdk.builders import dashboard, prometheus, timeseries\n"
    )
    assert quiet.returncode == 0, quiet.stderr
