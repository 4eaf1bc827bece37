from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from obs.exceptions import ProfilingError
from obs.profiling import pyspy
from obs.profiling.pyspy import RecordOptions, check_pid, explain_failure, find_py_spy
from obs.profiling.tree import SpyCommand, TreeRecording


def test_py_spy_is_found_next_to_the_interpreter() -> None:
    assert find_py_spy() == str(Path(sys.executable).parent / "py-spy")


def test_py_spy_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ProfilingError, match=r"pip install py-spy"):
        find_py_spy()


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        ("Permission Denied: Try running again with elevated permissions", "permission denied"),
        ("Error: Operation not permitted (os error 1)", "permission denied"),
        ("Error: Failed to find python version from target process", "is not a Python process"),
        (
            "Error: No python processes found in process 7 or any of its subprocesses",
            "is not a Python process",
        ),
        (
            "Error: Failed to get process executable name.\n0: No such file or directory",
            "exited before it could be profiled",
        ),
        (
            "Error: something new\nStack backtrace:",
            "py-spy failed on process 7 (exit status 1): something new;",
        ),
    ],
)
def test_py_spy_failures_become_one_line(stderr: str, expected: str) -> None:
    message = str(explain_failure(7, stderr, 1))
    assert expected in message
    assert "\n" not in message


def test_permission_message_says_what_to_do() -> None:
    message = str(explain_failure(7, "Permission Denied", 1))
    for hint in ("same user", "root", "SYS_PTRACE", "kernel.yama.ptrace_scope"):
        assert hint in message


@pytest.mark.parametrize(
    ("scope", "said"),
    [(None, "is absent here, so the same user is enough"),
     (0, "is 0 here, so the same user is enough"),
     (1, "only a parent may attach and the same user is not enough: run as root, add "
         "CAP_SYS_PTRACE, or sysctl kernel.yama.ptrace_scope=0"),
     (2, "only CAP_SYS_PTRACE may attach: run as root"),
     (3, "nothing may attach until a reboot")],
)  # fmt: skip
def test_the_ptrace_scope_hint_says_what_each_scope_allows(scope: int | None, said: str) -> None:
    """Yama's documented meanings: 1 lets only a parent (or CAP_SYS_PTRACE) attach, and py-spy
    is the target's sibling; 2 only CAP_SYS_PTRACE; 3 nothing."""
    assert said in pyspy.ptrace_scope_hint(scope)


@pytest.mark.parametrize("pid", [0, -5])
def test_check_pid_rejects_non_pids(pid: int) -> None:
    with pytest.raises(ProfilingError, match="is not a process id"):
        check_pid(pid)


def test_record_rejects_non_positive_duration() -> None:
    with pytest.raises(ProfilingError, match="must be positive"):
        pyspy.record(os.getpid(), RecordOptions(duration=0))


def test_check_pid_accepts_this_process_and_rejects_a_dead_one() -> None:
    assert check_pid(os.getpid()) is None
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)  # reaped: its pid names no process now
    with pytest.raises(ProfilingError, match=f"no process with pid {child.pid}"):
        check_pid(child.pid)


def test_record_passes_the_options_to_py_spy(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def fake_record_tree(
        root: int, seconds: int, command: SpyCommand, directory: Path, **kw: Any
    ) -> TreeRecording:
        assert kw["follow"] is False  # --no-subprocesses: the tree is not followed
        args = command(root, seconds, directory / "out.txt")
        seen.append(args)
        return TreeRecording(stacks={root: "main (app.py:1);work (app.py:5) 3\n"})

    monkeypatch.setattr(pyspy, "record_tree", fake_record_tree)
    options = RecordOptions(duration=2.5, rate=50, subprocesses=False, idle=True, gil=True,
                            native=True, nonblocking=True)  # fmt: skip
    result = pyspy.record(os.getpid(), options)
    (args,) = seen
    assert args[args.index("--duration") + 1] == "3"  # py-spy counts whole seconds
    assert args[args.index("--rate") + 1] == "50"
    assert {"--idle", "--gil", "--native", "--nonblocking", "--function"} <= set(args)
    assert "--subprocesses" not in args
    assert result.samples == 3 and result.rate == 50 and result.pid == os.getpid()
    assert result.stacks[0].pid == os.getpid()
