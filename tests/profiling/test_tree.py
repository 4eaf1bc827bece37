"""obs.profiling.tree: finding a process's descendants and sampling each with its own spy.

The spies here are small Python scripts standing in for py-spy (same command-line contract:
sample *pid* for *seconds*, write collapsed stacks to *output*), so the orchestration is tested
without ptrace; tests/integration/test_profile_cli.py drives the real py-spy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from obs.profiling.result import ProfileResult
from obs.profiling.tree import SpyCommand, children, command_line, descendants, record_tree

# Starts a child at once and, after *delay* seconds, another one; the first child starts a
# grandchild. Each prints its pid so the test knows the tree.
TREE = """
import subprocess, sys, time
delay = float(sys.argv[1])
sleeper = [sys.executable, "-c", "import time; time.sleep(30)"]
child = subprocess.Popen([sys.executable, "-c", '''
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
print(grandchild.pid, flush=True)
time.sleep(30)
'''], stdout=sys.stdout)
print(child.pid, flush=True)
time.sleep(delay)
late = subprocess.Popen(sleeper)
print(late.pid, flush=True)
time.sleep(30)
"""

# A stand-in for py-spy: "samples" for the given seconds, then writes one stack naming its pid.
FAKE_SPY = """
import sys, time
pid, seconds, output = sys.argv[1], float(sys.argv[2]), sys.argv[3]
time.sleep(min(seconds, 1.5))
with open(output, "w") as file:
    file.write(f"main (app.py:1);work_of_{pid} (app.py:2) {int(seconds)}\\n")
"""


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A root process with a child, a grandchild and a child that starts 1.5 s later."""
    script = tmp_path / "tree.py"
    script.write_text(TREE)
    root = subprocess.Popen(
        [sys.executable, str(script), "1.5"], stdout=subprocess.PIPE, text=True
    )
    assert root.stdout is not None
    try:
        yield root
    finally:
        for pid in [*descendants(root.pid), root.pid]:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        root.wait(timeout=10)
        root.stdout.close()


def read_pids(root: subprocess.Popen[str], count: int) -> list[int]:
    assert root.stdout is not None
    return [int(root.stdout.readline()) for _ in range(count)]


def test_descendants_lists_parents_before_children(
    tree: subprocess.Popen[str],
) -> None:
    root = tree
    first_two = set(read_pids(root, 2))  # the child's and the grandchild's, in either order
    (child,) = children(root.pid)
    (grandchild,) = first_two - {child}
    assert children(child) == [grandchild]
    assert descendants(root.pid) == [child, grandchild]
    assert "import time" in command_line(grandchild)


def test_a_process_that_is_gone_has_no_children_and_no_command_line() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert children(proc.pid) == []
    assert descendants(proc.pid) == []
    assert command_line(proc.pid) == ""


def fake_spy(tmp_path: Path) -> tuple[list[tuple[int, int]], SpyCommand]:
    script = tmp_path / "fake_spy.py"
    script.write_text(FAKE_SPY)
    started: list[tuple[int, int]] = []

    def command(pid: int, seconds: int, output: Path) -> list[str]:
        started.append((pid, seconds))
        return [sys.executable, str(script), str(pid), str(seconds), str(output)]

    return started, command


def test_every_process_of_the_tree_gets_a_spy_including_late_ones(
    tree: subprocess.Popen[str], tmp_path: Path
) -> None:
    root = tree
    read_pids(root, 2)  # the child and the grandchild run
    (child,) = children(root.pid)
    (grandchild,) = children(child)
    started, command = fake_spy(tmp_path)
    began = time.monotonic()
    recording = record_tree(
        root.pid, 4, command, tmp_path, env=dict(os.environ), grace=20
    )
    (late,) = read_pids(root, 1)
    assert time.monotonic() - began < 15
    spied = dict(started)
    assert spied[root.pid] == 4 and spied[child] == 4 and spied[grandchild] == 4
    # Found by a later poll, so it is sampled for what is left of the run, in whole seconds.
    assert 1 <= spied[late] <= 3
    assert set(recording.stacks) == {root.pid, child, grandchild, late}
    assert recording.command_lines[late] and not recording.timed_out
    result = ProfileResult.from_processes(recording.stacks, recording.command_lines, pid=root.pid)
    assert result.pids == tuple(sorted(recording.stacks))
    assert {s.frames[-1] for s in result.stacks} == {
        f"work_of_{pid} (app.py:2)" for pid in recording.stacks
    }


def test_a_spy_that_outlives_the_grace_period_is_killed(tmp_path: Path) -> None:
    def command(pid: int, seconds: int, output: Path) -> list[str]:
        return [sys.executable, "-c", "import time; time.sleep(60)"]

    began = time.monotonic()
    recording = record_tree(os.getpid(), 1, command, tmp_path, env=dict(os.environ), grace=0.5)
    assert recording.timed_out
    assert recording.stacks == {}
    assert time.monotonic() - began < 10


def test_a_spy_that_fails_at_once_ends_the_run_with_its_error(tmp_path: Path) -> None:
    def command(pid: int, seconds: int, output: Path) -> list[str]:
        return [sys.executable, "-c", "import sys; sys.exit('Error: not a python process')"]

    began = time.monotonic()
    # The test's own process as the root: its spies, children of it, are never spied on.
    recording = record_tree(os.getpid(), 30, command, tmp_path, env=dict(os.environ), grace=5)
    assert time.monotonic() - began < 10  # not the whole 30 s
    assert recording.stacks == {}
    assert recording.root_returncode == 1
    assert "not a python process" in recording.root_stderr
