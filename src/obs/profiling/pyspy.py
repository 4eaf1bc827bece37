"""Drive the py-spy binary against a running process: ``record`` and ``dump``.

py-spy ships as a binary inside its wheel, so it sits next to the interpreter (``.venv/bin``) or on
``PATH``. Its failures are turned into one :class:`~obs.exceptions.ProfilingError` line each that
says what to do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from obs.exceptions import ProfilingError
from obs.profiling.result import ProfileResult
from obs.profiling.tree import command_line, record_tree

# Generous: py-spy needs a moment to attach before sampling and to write its output after.
_GRACE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class RecordOptions:
    """How to sample: the flags of ``py-spy record`` that obs exposes."""

    duration: float = 30.0
    rate: int = 100
    subprocesses: bool = True
    idle: bool = False
    gil: bool = False
    native: bool = False
    #: Read without pausing the target (py-spy ``--nonblocking``), as continuous profilers do:
    #: pausing for every sample costs a busy server about a tenth of its requests per second.
    nonblocking: bool = True


def find_py_spy() -> str:
    """The py-spy executable: the one next to this interpreter, else the first on ``PATH``."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("py-spy")
    if found:
        return found
    raise ProfilingError(
        "py-spy is not installed; run: pip install py-spy (it ships the binary obs drives)."
    )


def check_pid(pid: int) -> None:
    """Raise a :class:`ProfilingError` unless a process *pid* exists."""
    if pid <= 0:
        raise ProfilingError(f"{pid} is not a process id; pass the pid of a running process.")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise ProfilingError(
            f"no process with pid {pid}; check the pid with: ps -ef | grep python"
        ) from None
    except PermissionError:
        pass  # it exists but belongs to someone else; the check below says more
    try:
        # Needs the same access as reading its memory: with --subprocesses, py-spy would
        # misreport a refusal as "no python processes found".
        os.readlink(f"/proc/{pid}/exe")
    except PermissionError:
        raise permission_denied(pid) from None
    except OSError:
        pass  # not Linux, or a kernel thread: py-spy reports what that means


PTRACE_SCOPE = "/proc/sys/kernel/yama/ptrace_scope"


def ptrace_scope() -> int | None:
    """Yama's ``ptrace_scope`` (``None`` without Yama)."""
    try:
        with open(PTRACE_SCOPE) as file:
            return int(file.read().strip())
    except (OSError, ValueError):
        return None


def ptrace_scope_hint(scope: int | None) -> str:
    """What Yama's *scope* means for py-spy, which attaches to a process it did not start."""
    if scope is None or scope == 0:
        shown = "absent" if scope is None else "0"
        return f"kernel.yama.ptrace_scope is {shown} here, so the same user is enough"
    if scope == 1:
        return (
            "kernel.yama.ptrace_scope is 1, so only a parent may attach and the same user is "
            "not enough: run as root, add CAP_SYS_PTRACE, or sysctl kernel.yama.ptrace_scope=0"
        )
    if scope == 2:
        return "kernel.yama.ptrace_scope is 2, so only CAP_SYS_PTRACE may attach: run as root"
    return (
        f"kernel.yama.ptrace_scope is {scope}, so nothing may attach until a reboot "
        "with it at 0 (or 2 and root)"
    )


def permission_denied(pid: int) -> ProfilingError:
    """The error for a process obs may not read, with everything that can fix it."""
    return ProfilingError(
        f"permission denied reading process {pid}; run obs as the same user as the process "
        "or as root (sudo), in a container add the SYS_PTRACE capability "
        f"(docker run --cap-add SYS_PTRACE); {ptrace_scope_hint(ptrace_scope())}."
    )


def explain_failure(pid: int, stderr: str, returncode: int) -> ProfilingError:
    """Turn py-spy's error output into one line saying what to do."""
    text = stderr.lower()
    if "permission denied" in text or "operation not permitted" in text or "os error 1)" in text:
        return permission_denied(pid)
    if "python version" in text or "no python processes found" in text:
        return ProfilingError(
            f"process {pid} ({command_line(pid) or 'unknown command'}) is not a Python process; "
            "pass the pid of a Python interpreter (ps -ef | grep python)."
        )
    if "no such file or directory" in text or "no such process" in text:
        return ProfilingError(
            f"process {pid} exited before it could be profiled; check the pid with: ps -ef"
        )
    first = next((line.strip() for line in stderr.splitlines() if line.strip()), "")
    first = first.removeprefix("Error: ")
    return ProfilingError(
        f"py-spy failed on process {pid} (exit status {returncode}): {first or 'no message'}; "
        "run py-spy directly to see its full output."
    )


def _env() -> dict[str, str]:
    # A Rust backtrace would bury py-spy's one useful line.
    return {**os.environ, "RUST_BACKTRACE": "0"}


def _spy_args(options: RecordOptions) -> list[str]:
    # --subprocesses is never passed on: obs follows the process tree itself (obs.profiling.tree).
    flags = {
        "--idle": options.idle,
        "--gil": options.gil,
        "--native": options.native,
        "--nonblocking": options.nonblocking,
    }
    return [flag for flag, wanted in flags.items() if wanted]


def record(pid: int, options: RecordOptions | None = None) -> ProfileResult:
    """Sample process *pid* (and, with ``subprocesses``, its descendants) with py-spy.

    Ctrl-C (``KeyboardInterrupt``) stops sampling early; py-spy still writes what it has and the
    result covers the time sampled so far.
    """
    options = options or RecordOptions()
    if options.duration <= 0 or options.rate <= 0:
        raise ProfilingError("--duration and --rate must be positive; for example --duration 10.")
    check_pid(pid)
    spy = find_py_spy()
    cmdline = command_line(pid)
    # py-spy counts whole seconds; round up so a short request is honoured.
    seconds = max(1, int(-(-options.duration // 1)))

    def command(target: int, duration: int, output: Path) -> list[str]:
        args = [spy, "record", "--pid", str(target), "--duration", str(duration)]
        args += ["--rate", str(options.rate), "--format", "raw", "--function"]
        return [*args, "--output", str(output), *_spy_args(options)]

    with tempfile.TemporaryDirectory(prefix="obs-profile-") as tmp:
        recording = record_tree(
            pid, seconds, command, Path(tmp),
            env=_env(), grace=_GRACE_SECONDS, follow=options.subprocesses,
        )  # fmt: skip
    if not recording.stacks:
        if recording.timed_out:
            raise ProfilingError(
                "py-spy did not finish in time; try again, or run py-spy record directly."
            )
        raise explain_failure(pid, recording.root_stderr, recording.root_returncode)
    return ProfileResult.from_processes(
        recording.stacks,
        # Without subprocesses there is one process: its stacks need no process frame.
        recording.command_lines if options.subprocesses else {},
        pid=pid,
        duration=round(min(recording.elapsed, float(seconds)), 3),
        rate=options.rate,
        command_line=cmdline,
        name=f"pid {pid}: {cmdline}" if cmdline else f"pid {pid}",
    )


def dump(
    pid: int,
    *,
    native: bool = False,
    subprocesses: bool = False,
    show_locals: bool = False,
    nonblocking: bool = False,
) -> str:
    """The current stack of every thread of *pid* (``py-spy dump``), as text."""
    check_pid(pid)
    flags = {
        "--native": native,
        "--subprocesses": subprocesses,
        "--locals": show_locals,
        "--nonblocking": nonblocking,
    }
    args = [find_py_spy(), "dump", "--pid", str(pid)]
    args += [flag for flag, wanted in flags.items() if wanted]
    try:
        proc = subprocess.run(
            args, capture_output=True, text=True, timeout=_GRACE_SECONDS, env=_env(), check=False
        )
    except subprocess.TimeoutExpired:
        raise ProfilingError(
            f"py-spy dump of process {pid} did not finish in {_GRACE_SECONDS:.0f}s; retry with "
            "--nonblocking, or run py-spy dump directly."
        ) from None
    if proc.returncode != 0:
        raise explain_failure(pid, proc.stderr + proc.stdout, proc.returncode)
    return proc.stdout
