"""`obs demo`, end to end, as the README's demo command runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest


def processes_mentioning(text: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{pid}: {cmdline}")
    return found


@pytest.mark.timeout(120)
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo-out"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "obs", "demo", "--duration", "5", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert elapsed < 90
    text = proc.stdout
    assert "RED metrics per route" in text and "/items/{item_id}" in text
    assert "The slowest requests" in text and "request_id=" in text
    assert "Exemplar on the" in text
    assert "Prometheus (real, with exemplar storage)" in text  # make test installs prometheus
    assert "slowest exemplar Prometheus stored" in text
    svg = (out / "profile.svg").read_text()
    assert "price_report" in svg  # a function of the example service
    assert (out / "profile.speedscope.json").stat().st_size > 0
    # The slowest request's own flame graph, kept by the always-on sampler, named by its id.
    assert "The slowest request's own flame graph" in text
    kept = list((out / "profiles" / "slow").glob("*.svg"))
    assert kept and any("wait_for_inventory" in p.read_text() for p in kept)
    shown = text.split("The slowest request's own flame graph", 1)[1]
    slow_in = next(line for line in shown.splitlines() if "slow in:" in line)
    # /slow waits up to 0.4 s in wait_for_inventory; a loaded VM can make /report slower.
    assert "wait_for_inventory (" in slow_in or "price_report (" in slow_in, slow_in
    assert (out / "service.log.jsonl").read_text().count('"obs.access"') > 50
    assert "http_server_request_duration_seconds_bucket" in (out / "metrics.txt").read_text()
    assert sorted(p.name for p in (out / "dashboards").glob("*.json")) == [
        "http-overview.json", "logs.json", "route-drilldown.json", "runtime.json",
    ]  # fmt: skip
    assert processes_mentioning(str(out)) == []
    assert processes_mentioning("obs.demo.service") == []


@pytest.mark.timeout(90)
@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_ctrl_c_or_sigterm_stops_the_demo_and_everything_it_started(
    tmp_path: Path, stop: str
) -> None:
    import signal

    out = tmp_path / "interrupted"
    demo = subprocess.Popen(
        [sys.executable, "-m", "obs", "demo", "--duration", "60", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 40
        while not processes_mentioning(f"{out}/profile.svg"):  # obs profile is running
            assert time.monotonic() < deadline, "the demo never started profiling"
            assert demo.poll() is None, demo.communicate()
            time.sleep(0.2)
        time.sleep(1)
        demo.send_signal(signal.Signals[stop])
        _, err = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 128 + signal.Signals[stop], err
    assert "Interrupted" in err
    time.sleep(0.5)
    assert processes_mentioning(str(out)) == []
    assert processes_mentioning("obs.demo.service") == []
