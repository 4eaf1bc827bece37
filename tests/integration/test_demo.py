"""`obs demo`, end to end, as the README's demo command runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from obs.demo.prometheus import start_prometheus
from tests.conftest import free_port
from tests.integration.servers import serve

OTHER_APPS = Path(__file__).resolve().parents[1] / "http" / "apps"


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


@contextmanager
def another_service() -> Iterator[int]:
    """Another program already serving /metrics on a port of 127.0.0.1 (a real uvicorn)."""
    port = free_port()
    argv = ["uvicorn", "options_asgi_app:app", "--host", "127.0.0.1", "--port", str(port)]
    with serve(argv, port, cwd=OTHER_APPS, ready_path="/items/ready"):
        yield port


@pytest.mark.timeout(60)
def test_a_port_in_use_fails_in_one_line_and_leaves_nothing_running(tmp_path: Path) -> None:
    out = tmp_path / "busy"
    with another_service() as port:
        proc = subprocess.run(
            [sys.executable, "-m", "obs", "demo", "--duration", "2", "--port", str(port),
             "--out", str(out)],
            capture_output=True, text=True, timeout=50, check=False,
        )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stderr == f"Error: port {port} is in use; choose another --port.\n"
    assert "RED metrics" not in proc.stdout  # not the other service's numbers
    assert processes_mentioning(str(out)) == []
    assert processes_mentioning("obs.demo.service") == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("what", ["demo service", "Prometheus"])
def test_an_answer_from_another_process_on_the_port_is_not_taken_for_ours(
    tmp_path: Path, what: str
) -> None:
    """The port taken between the check and the bind: the other program answers at once, ours
    fails to bind; the demo must not carry on with the other's answers."""
    from obs.demo.runner import _stop, _wait_for
    from obs.exceptions import ObsError

    with another_service() as port:
        if what == "Prometheus":
            binary = shutil.which("prometheus")
            assert binary, "Debian's prometheus binary is needed: apt-get install prometheus"
            ours = start_prometheus(binary, free_port(), port, tmp_path)
            url = f"http://127.0.0.1:{port}/items/ready"  # a path the other one answers
        else:
            ours = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "obs.demo.service:app", "--host", "127.0.0.1",
                 "--port", str(port)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
            url = f"http://127.0.0.1:{port}/metrics"
        try:
            with pytest.raises(ObsError, match=f"^port {port} "):
                _wait_for(url, ours, what, port, f"port {port} is in use", timeout=30)
        finally:
            _stop(ours)
    assert ours.poll() is not None


@pytest.mark.timeout(60)
def test_our_own_service_is_recognised_on_its_port(tmp_path: Path) -> None:
    from obs.demo.runner import _stop, _wait_for

    port = free_port()
    ours = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "obs.demo.service:app", "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        _wait_for(f"http://127.0.0.1:{port}/metrics", ours, "demo service", port, "in use")
        assert ours.poll() is None
    finally:
        _stop(ours)
