"""Helpers of the security tests: an unprivileged local user, and places it can reach."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

#: The unprivileged local user (scripts/bootstrap.sh --system creates it).
NOBODY = "obsnobody"
#: The system interpreter: the unprivileged user cannot enter root's virtualenv.
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"


def as_nobody(code: str, *, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run Python *code* as the unprivileged user (fails loudly if that user is missing)."""
    return subprocess.run(
        ["runuser", "-u", NOBODY, "--", SYSTEM_PYTHON, "-c", code],
        capture_output=True, text=True, timeout=timeout, check=False, cwd="/",
    )  # fmt: skip


def nobody_uid() -> int:
    import pwd

    return pwd.getpwnam(NOBODY).pw_uid


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A fresh name under /tmp, where every local user can create entries (nothing created yet)."""
    path = Path("/tmp") / f"obs-security-{uuid.uuid4().hex[:12]}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def root_only(tmp_path: Path) -> Path:
    """A directory only root may enter: where a planted link must never make root write."""
    path = tmp_path / "root-only"
    path.mkdir(mode=0o700)
    return path


def run_obs_python(code: str, env: dict[str, str], **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
