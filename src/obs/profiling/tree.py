"""Sampling a process and its descendants: one py-spy per process, the tree followed by obs.

py-spy's own ``--subprocesses`` looks for new children by reading the ``stat`` file of every
process on the machine ten times a second, which about doubled its CPU use on one busy process
(README, "Profiling"). obs instead reads the ``children`` files of the profiled tree once a
second, starts one py-spy (without ``--subprocesses``) for each process it has not seen yet,
and merges the per-process stacks: gunicorn and uvicorn workers started during the run,
recycled ones included, are sampled from their first second.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from obs.logs.redaction import RedactSecrets

#: How often the tree is searched for new processes.
POLL_SECONDS = 1.0

#: The py-spy command that samples *pid* for *seconds* into *output*.
SpyCommand = Callable[[int, int, Path], list[str]]


def command_line(pid: int) -> str:
    """The command line of *pid* as ``ps`` shows it, secret-looking arguments masked, or ``""``
    if it cannot be read.

    It is written into every profile, so one rule applies (see SECURITY.md): the value of an
    option whose name is a secret key (``--db-password=x``, ``--api-key x``), of a
    ``NAME=value`` argument whose name is one, and URL userinfo are replaced by ``[REDACTED]``
    (:meth:`obs.logs.redaction.RedactSecrets.redact_argv`, default keys).
    """
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    argv = raw.rstrip(b"\0").decode("utf-8", "replace").split("\0")
    return " ".join(_REDACT.redact_argv(argv))


_REDACT = RedactSecrets()


def children(pid: int) -> list[int]:
    """The pids of *pid*'s children (of all its threads); ``[]`` if it is gone or unreadable."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found: list[int] = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as file:
                found.extend(int(child) for child in file.read().split())
        except OSError:  # the thread ended, or a kernel without CONFIG_PROC_CHILDREN
            continue
    return found


def descendants(pid: int) -> list[int]:
    """Children, grandchildren... of *pid*, each parent before its children."""
    found: list[int] = []
    seen = {pid}
    queue = [pid]
    while queue:
        for child in children(queue.pop(0)):
            if child not in seen:
                seen.add(child)
                found.append(child)
                queue.append(child)
    return found


@dataclass
class _Spy:
    """One py-spy process sampling one pid."""

    pid: int
    proc: subprocess.Popen[bytes]
    output: Path
    errors: IO[bytes]

    def running(self) -> bool:
        return self.proc.poll() is None

    def stderr(self) -> str:
        self.errors.seek(0)
        return self.errors.read().decode("utf-8", "replace")


@dataclass
class TreeRecording:
    """What one py-spy per process left behind."""

    #: Collapsed stacks per sampled pid (processes whose py-spy wrote an output).
    stacks: dict[int, str] = field(default_factory=dict)
    #: Command lines, read when each process's py-spy started (a recycled worker is gone later).
    command_lines: dict[int, str] = field(default_factory=dict)
    #: The root's py-spy error output and exit status, to explain a failure.
    root_stderr: str = ""
    root_returncode: int = 0
    #: Seconds from the first py-spy's start to the last one's end.
    elapsed: float = 0.0
    #: Whether some py-spy had to be killed after the grace period.
    timed_out: bool = False


def record_tree(
    root: int,
    seconds: int,
    command: SpyCommand,
    directory: Path,
    *,
    env: dict[str, str],
    grace: float,
    follow: bool = True,
) -> TreeRecording:
    """Sample *root* and, if *follow*, every descendant that appears within *seconds* (whole
    seconds).

    Ctrl-C (``KeyboardInterrupt``) stops every py-spy early; each still writes what it has.
    """
    spies: dict[int, _Spy] = {}
    command_lines: dict[int, str] = {}
    started = time.monotonic()
    deadline = started + seconds

    def start(pid: int, duration: int) -> None:
        output = directory / f"{pid}.txt"
        errors = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            command(pid, duration, output),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors, env=env,
        )  # fmt: skip
        spies[pid] = _Spy(pid, proc, output, errors)
        command_lines[pid] = command_line(pid)

    try:
        try:
            start(root, seconds)
            while True:
                remaining = deadline - time.monotonic()
                if follow and remaining >= 1.0:  # py-spy samples whole seconds
                    ours = {os.getpid()} | {spy.proc.pid for spy in spies.values()}
                    for pid in descendants(root):
                        if pid not in spies and pid not in ours:
                            start(pid, math.ceil(remaining))
                if not any(spy.running() for spy in spies.values()):
                    break  # every process ended, or none of them runs Python
                if remaining <= 0:
                    break
                time.sleep(min(POLL_SECONDS, remaining))
            timed_out = _wait_all(spies.values(), deadline + grace)
        except KeyboardInterrupt:
            # In a terminal every py-spy got the SIGINT too; a signal sent to obs alone did not.
            for spy in spies.values():
                if spy.running():
                    spy.proc.send_signal(signal.SIGINT)
            timed_out = _wait_all(spies.values(), time.monotonic() + grace)
        recording = TreeRecording(
            command_lines=command_lines,
            elapsed=time.monotonic() - started,
            timed_out=timed_out,
        )
        for pid, spy in spies.items():
            if spy.output.exists():
                recording.stacks[pid] = spy.output.read_text(encoding="utf-8", errors="replace")
        first = spies.get(root)
        if first is not None:
            recording.root_stderr = first.stderr()
            recording.root_returncode = first.proc.returncode
        return recording
    finally:
        for spy in spies.values():
            if spy.running():
                spy.proc.kill()
                spy.proc.wait()
            spy.errors.close()


def _wait_all(spies: Iterable[_Spy], until: float) -> bool:
    """Wait for every py-spy to end by *until*; kill the late ones; return whether any was."""
    late = False
    for spy in spies:
        try:
            spy.proc.wait(timeout=max(until - time.monotonic(), 0.0))
        except subprocess.TimeoutExpired:
            spy.proc.kill()
            spy.proc.wait()
            late = True
    return late
