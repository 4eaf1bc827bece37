"""A full filesystem under ``PROMETHEUS_MULTIPROC_DIR``: the master survives, every request is
answered, and what could not be recorded is counted, with gunicorn as deployed."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.integration.servers import serve

APPS = Path(__file__).resolve().parent / "apps"
# Status codes the app answers with: each is a new label set, so new keys in the .db files.
CODES = [c for c in range(200, 600) if c not in (204, 304) and not 100 <= c < 200]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs, private to root, unmounted afterwards."""
    path = tmp_path / "multiproc"
    path.mkdir(mode=0o700)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(path)], check=True
    )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> int:
    """Write a file until the filesystem is full; return its size."""
    chunk = b"\0" * 65536
    written = 0
    with (path / "filler.bin").open("wb", buffering=0) as out:
        while True:
            try:
                written += out.write(chunk)
            except OSError:
                break
    for _ in range(64):  # the last few blocks, smaller than a chunk
        try:
            with (path / "filler.bin").open("ab", buffering=0) as out:
                out.write(b"\0" * 4096)
        except OSError:
            break
    return written


def internal_errors(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("obs_internal_errors_total{"):
            component = line.split('component="', 1)[1].split('"', 1)[0]
            out[component] = out.get(component, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


@pytest.mark.timeout(240)
def test_a_full_multiprocess_directory_loses_counts_not_the_service(small_disk: Path) -> None:
    port = free_port()
    argv = [
        "gunicorn", "-c", "python:obs.gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
        "--max-requests", "40", "--graceful-timeout", "5", "disk_app:app",
    ]  # fmt: skip
    env = {"PROMETHEUS_MULTIPROC_DIR": str(small_disk), "OBS_LOG_FORMAT": "json"}
    with serve(argv, port, cwd=APPS, env=env) as server:
        base = server.base_url

        def get(code: int) -> int:
            with httpx.Client(base_url=base, timeout=20) as client:
                return client.get(f"/status/{code}").status_code

        with ThreadPoolExecutor(4) as pool:
            before = list(pool.map(get, [200] * 80))
        assert before == [200] * 80
        assert fill(small_disk) > 0
        assert os.statvfs(small_disk).f_bavail < 4
        # New label sets, recycled workers (new files), folds of dead workers: all need space.
        plan = [CODES[i % len(CODES)] for i in range(300)]
        with ThreadPoolExecutor(4) as pool:
            answered = list(pool.map(get, plan))
        assert answered == plan, "every request is answered, with the app's own status"
        scrape = httpx.get(base + "/metrics", timeout=20)
        assert scrape.status_code == 200
        assert server.process.poll() is None, "the gunicorn master died"
    errors = internal_errors(scrape.text)
    assert errors.get("metrics", 0) > 0, (errors, server.stderr[-3000:])  # the loss is counted
    assert "No space left on device" in server.stderr  # and reported
    assert "SIGBUS" not in server.stderr and "signal 7" not in server.stderr
    assert "Shutting down: Master" in server.stdout + server.stderr  # it exited on our SIGTERM
