"""A real Prometheus for the demo, when the ``prometheus`` binary is installed."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from obs.metrics import REQUEST_DURATION

INSTALL_HINT = "install it to see PromQL and exemplars too: sudo apt-get install prometheus"


def find_prometheus() -> str | None:
    return shutil.which("prometheus")


def start_prometheus(
    binary: str, target_port: int, port: int, out: Path
) -> subprocess.Popen[bytes]:
    """Scrape the demo service every second, with exemplar storage on, on 127.0.0.1 only."""
    config = out / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: obs-demo\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{target_port}']\n"
    )
    data = out / "prometheus-data"
    shutil.rmtree(data, ignore_errors=True)
    with (out / "prometheus.log").open("wb") as log:  # the child keeps its own copy
        return subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--enable-feature=exemplar-storage",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def query(port: int, promql: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    result: list[dict[str, Any]] = _get(url)["data"]["result"]
    return result


def exemplars(port: int, seconds: float) -> list[dict[str, Any]]:
    now = time.time()
    params = {"query": f"{REQUEST_DURATION}_bucket", "start": now - seconds, "end": now}
    url = f"http://127.0.0.1:{port}/api/v1/query_exemplars?" + urllib.parse.urlencode(params)
    result: list[dict[str, Any]] = _get(url)["data"]
    return result


def wait_until_scraped(port: int, timeout: float, scrapes: int = 3) -> bool:
    """True once Prometheus has scraped the service *scrapes* times (bounded wait), enough
    for ``rate()`` to have data."""
    deadline = time.monotonic() + timeout
    promql = f'count_over_time(up{{job="obs-demo"}}[1m]) >= {scrapes}'
    while time.monotonic() < deadline:
        try:
            if query(port, promql):
                return True
        except OSError:
            pass
        time.sleep(0.5)
    return False
