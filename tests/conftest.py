from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from prometheus_client import CollectorRegistry

import obs
from obs import _internal

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _reset_global_state() -> Iterator[None]:
    """Every test starts with unconfigured structlog, a bare root logger and no bound context."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    _internal.reset_reports()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def log() -> io.StringIO:
    """obs's JSON log lines, captured."""
    out = io.StringIO()
    obs.configure_logging(service_name="t", log_format="json", stream=out)
    return out


def access(out: io.StringIO) -> list[dict[str, Any]]:
    """The access-log lines among the JSON lines written to *out*."""
    return [r for r in map(json.loads, out.getvalue().splitlines()) if r.get("event") == "request"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_python(
    code: str, *, env: dict[str, str] | None = None, timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run *code* in a fresh interpreter with stdout a pipe (so obs picks JSON)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd,
        check=False,
    )
