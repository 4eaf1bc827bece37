from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from prometheus_client import CollectorRegistry

import obs
from obs import selfreport
from obs.metrics import ACTIVE_REQUESTS, REQUEST_DURATION

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _reset_global_state(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts with unconfigured structlog, a bare root logger and no bound context.

    Clearing the context after each test could hide a request context the product leaks; in
    tests marked ``no_context_reset`` a context left bound fails the test instead.
    """
    check_context = request.node.get_closest_marker("no_context_reset") is not None
    if check_context:
        assert structlog.contextvars.get_contextvars() == {}, "a test before left context bound"
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    hooks = sys.excepthook, threading.excepthook
    yield
    sys.excepthook, threading.excepthook = hooks  # configure_logging installs its own
    leaked = structlog.contextvars.get_contextvars() if check_context else {}
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    selfreport.reset_reports()
    assert not leaked, f"the test left log context bound: {leaked}"


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def log() -> io.StringIO:
    """obs's JSON log lines, captured."""
    out = io.StringIO()
    obs.configure_logging(service_name="t", log_format="json", stream=out)
    return out


def count(registry: CollectorRegistry, **labels: str) -> float:
    """Requests recorded in the duration histogram whose labels include *labels*."""
    return sum(
        s.value
        for metric in registry.collect()
        for s in metric.samples
        if s.name == REQUEST_DURATION + "_count"
        and all(s.labels.get(k) == v for k, v in labels.items())
    )


def active(registry: CollectorRegistry, method: str = "GET") -> float:
    """The active-requests gauge of *method*."""
    value = registry.get_sample_value(ACTIVE_REQUESTS, {"http_request_method": method})
    return value or 0.0


def access(out: io.StringIO) -> list[dict[str, Any]]:
    """The access-log lines among the JSON lines written to *out*."""
    return [r for r in map(json.loads, out.getvalue().splitlines()) if r.get("event") == "request"]


def resolve(dotted: str) -> object:
    """The object a dotted name such as ``package.module.Class.attribute`` stands for."""
    import importlib

    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attribute in parts[split:]:
            target = getattr(target, attribute)
        return target
    raise ImportError(dotted)


def assert_private_names_exist(
    names: tuple[tuple[str, str], ...], library: str, version: str
) -> None:
    """Each compat module's :data:`PRIVATE_NAMES` still exist in the installed *library*."""
    missing = []
    for dotted, purpose in names:
        try:
            resolve(dotted)
        except (ImportError, AttributeError):
            missing.append(f"{dotted} (used for {purpose})")
    assert not missing, f"{library} {version} no longer has: " + "; ".join(missing)


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


@pytest.fixture
def stranger() -> Iterator[int]:
    """The uid of another local user, created for the test (``useradd``) and removed after it;
    a loud failure when that is impossible (the tests that need one run as root, as CI does)."""
    import uuid

    if os.geteuid() != 0:
        pytest.fail("this test creates another local user: run it as root (as CI does).")
    name = f"obsstr{uuid.uuid4().hex[:8]}"
    created = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if created.returncode:
        pytest.fail(f"cannot create the local user {name}: {created.stderr.strip()}")
    import pwd

    try:
        yield pwd.getpwnam(name).pw_uid
    finally:
        subprocess.run(["userdel", name], capture_output=True, check=False)
