from __future__ import annotations

from pathlib import Path

import pytest

from obs import ProfileResult as LazyProfileResult
from obs.exceptions import ProfilingError
from obs.profiling.result import Frame, ProfileResult, StackSample

RAW = (
    'process 10:"gunicorn: master";process 11:"gunicorn: worker";'
    "<module> (app.py:1);handle (app.py:5);burn (app.py:9) 30\n"
    'process 10:"gunicorn: master";process 12:"gunicorn: worker";'
    "<module> (app.py:1);handle (app.py:5);burn (app.py:9) 20\n"
    'process 10:"gunicorn: master";process 12:"gunicorn: worker";'
    "<module> (app.py:1);handle (app.py:5) 10\n"
    'process 10:"gunicorn: master";<module> (app.py:1);sleep_loop (app.py:20) 5\n'
)


def test_lazy_export_is_the_class() -> None:
    assert LazyProfileResult is ProfileResult


def test_from_collapsed_takes_process_frames_off_the_stack() -> None:
    result = ProfileResult.from_collapsed(RAW, rate=100, duration=1.0)
    assert result.samples == 65
    assert result.pids == (10, 11, 12)
    assert result.processes[11] == "gunicorn: worker"
    assert all(not f.startswith("process ") for s in result.stacks for f in s.frames)
    by_pid = {s.pid: s for s in result.stacks if s.frames[-1] == "burn (app.py:9)"}
    assert by_pid[11].count == 30 and by_pid[12].count == 20


def test_own_and_total_time() -> None:
    result = ProfileResult.from_collapsed(RAW)
    top_own = result.top_own(2)
    assert [(s.frame, s.own) for s in top_own] == [
        ("burn (app.py:9)", 50),
        ("handle (app.py:5)", 10),
    ]
    top_total = result.top_total(3)
    assert [(s.frame, s.total) for s in top_total] == [
        ("<module> (app.py:1)", 65),
        ("handle (app.py:5)", 60),
        ("burn (app.py:9)", 50),
    ]


def test_recursion_counts_once_in_total() -> None:
    result = ProfileResult.from_collapsed("main (a.py:1);f (a.py:2);f (a.py:2);f (a.py:2) 4\n")
    (f,) = [s for s in result.function_stats() if s.frame == "f (a.py:2)"]
    assert (f.own, f.total) == (4, 4)


def test_identical_stacks_are_merged() -> None:
    result = ProfileResult.from_collapsed("a;b 1\na;b 2\n", pid=7)
    assert result.stacks == (StackSample(("a", "b"), 3, 7),)


def test_sample_without_frames_is_counted() -> None:
    result = ProfileResult.from_collapsed("a;b 3\n 2\n")
    assert result.samples == 5
    assert [s.frame for s in result.top_own()] == ["b"]


def test_malformed_line_is_one_clear_error() -> None:
    with pytest.raises(ProfilingError, match=r"line 2 .*py-spy record --format raw"):
        ProfileResult.from_collapsed("a;b 1\nnot a count\n")


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    result = ProfileResult.from_collapsed(
        RAW, pid=10, duration=3.0, rate=100, command_line="gunicorn app:app", name="pid 10"
    )
    path = tmp_path / "profile.json"
    result.save(path)
    assert path.read_text().endswith("}\n")
    assert ProfileResult.load(path) == result


def test_load_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"version": 99}')
    with pytest.raises(ProfilingError, match="version"):
        ProfileResult.load(path)
    with pytest.raises(ProfilingError, match="cannot read profile"):
        ProfileResult.load(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("text", "frame"),
    [
        ("handle (app.py:5)", Frame("handle", "app.py", 5)),
        ("Cls.method (pkg/mod.py:12)", Frame("Cls.method", "pkg/mod.py", 12)),
        ("<native code>", Frame("<native code>")),
        ("f (x (y).py:3)", Frame("f", "x (y).py", 3)),
    ],
)
def test_frame_parse(text: str, frame: Frame) -> None:
    assert Frame.parse(text) == frame
    assert str(frame) == text
