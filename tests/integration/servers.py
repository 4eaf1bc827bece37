"""Real servers on 127.0.0.1 for the integration tests: started, awaited, stopped, drained."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
APPS = Path(__file__).resolve().parent / "apps"


@dataclass
class Server:
    """A running server; ``stdout``/``stderr`` are filled in once it has stopped."""

    process: subprocess.Popen[bytes]
    base_url: str
    name: str = ""
    stdout: str = ""
    stderr: str = ""
    #: Lines written to stdout so far, when it is a pipe (``serve(..., stdout_pipe=True)``).
    stdout_lines: int = 0
    _files: list[Path] = field(default_factory=list)
    _drain: threading.Thread | None = None

    def lines(self) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.strip()]

    def stop(self) -> None:
        """Stop the server (idempotent) and read everything it wrote."""
        stop(self.process)
        if self._drain is not None:
            self._drain.join(timeout=30)
            self._drain = None
        if self._files:
            out, err = self._files
            self.stdout = out.read_text()
            self.stderr = err.read_text()
            out.unlink(missing_ok=True)
            err.unlink(missing_ok=True)
            self._files = []


@contextmanager
def serve(
    argv: Sequence[str],
    port: int,
    *,
    cwd: Path = APPS,
    env: dict[str, str] | None = None,
    ready_path: str = "/metrics",
    timeout: float = 30.0,
    stdout_pipe: bool = False,
) -> Iterator[Server]:
    """Start ``python -m <argv>``, wait until *ready_path* answers, stop it on exit.

    Output goes to files rather than pipes, so a chatty server can never block on a full pipe.
    With *stdout_pipe*, stdout is a pipe, as under a container runtime or a process manager,
    that a thread drains into the file (counting lines in ``Server.stdout_lines``).
    """
    out = Path(tempfile.mkstemp(prefix="obs-server-", suffix=".out")[1])
    err = Path(tempfile.mkstemp(prefix="obs-server-", suffix=".err")[1])
    full_env = {**os.environ, "PYTHONPATH": f"{cwd}{os.pathsep}{ROOT / 'src'}", **(env or {})}
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", *argv],
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE if stdout_pipe else stdout,
            stderr=stderr,
            start_new_session=True,
        )
    server = Server(process, f"http://127.0.0.1:{port}", _files=[out, err])
    if stdout_pipe:
        server._drain = threading.Thread(target=_drain, args=(server, out), daemon=True)
        server._drain.start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited early: {err.read_text()[-3000:]}")
            try:
                httpx.get(server.base_url + ready_path, timeout=1.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"server not ready in {timeout}s: {err.read_text()[-3000:]}"
                    ) from None
                time.sleep(0.05)
        yield server
    finally:
        server.stop()


def _drain(server: Server, target: Path) -> None:
    """Copy the server's stdout pipe into *target* until the server closes it."""
    pipe = server.process.stdout
    assert pipe is not None
    with pipe, target.open("wb") as out:
        while chunk := os.read(pipe.fileno(), 1 << 20):
            out.write(chunk)
            server.stdout_lines += chunk.count(b"\n")


def stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM the server's process group, then SIGKILL if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
