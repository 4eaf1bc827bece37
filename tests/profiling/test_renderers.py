from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from obs.exceptions import ProfilingError
from obs.profiling.renderers import render, render_summary
from obs.profiling.result import ProfileResult
from tests.profiling.conftest import speedscope_frame_names, validate_speedscope
from tests.profiling.test_result import RAW

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def result() -> ProfileResult:
    return ProfileResult.from_collapsed(RAW, pid=10, duration=1.0, rate=100, name="pid 10")


def test_collapsed_round_trips(result: ProfileResult) -> None:
    text = render(result, "collapsed")
    assert sorted(text.splitlines()) == sorted(RAW.replace(
        'process 10:"gunicorn: master";process 1', "process 1"
    ).splitlines())  # fmt: skip
    assert ProfileResult.from_collapsed(text, pid=10, duration=1.0, rate=100, name="pid 10") == (
        result
    )


def test_speedscope_validates_and_has_one_profile_per_process(result: ProfileResult) -> None:
    document = validate_speedscope(render(result, "speedscope"))
    assert "burn" in speedscope_frame_names(document)
    assert [p["name"] for p in document["profiles"]] == [
        "pid 10: gunicorn: master",
        "pid 11: gunicorn: worker",
        "pid 12: gunicorn: worker",
    ]
    worker = document["profiles"][1]
    assert worker["unit"] == "seconds" and worker["weights"] == [0.3]
    frames = document["shared"]["frames"]
    assert [frames[i]["name"] for i in worker["samples"][0]] == ["<module>", "handle", "burn"]
    assert frames[worker["samples"][0][-1]] == {"name": "burn", "file": "app.py", "line": 9}


def test_svg_is_well_formed_and_sized_by_samples(result: ProfileResult) -> None:
    root = ET.fromstring(render(result, "svg"))
    titles = [t.text or "" for t in root.iter(f"{SVG}title")]
    assert "all (65 samples, 100.00%)" in titles
    assert "burn (app.py:9) (30 samples, 46.15%)" in titles  # one box per process
    assert render(result, "svg") == render(result, "svg")


def test_svg_escapes_markup() -> None:
    result = ProfileResult.from_collapsed("<module> (a&b.py:1);f<T> (a&b.py:2) 1\n")
    text = render(result, "svg")
    ET.fromstring(text)
    assert "f&lt;T&gt;" in text


def test_empty_profile_renders() -> None:
    empty = ProfileResult(stacks=())
    ET.fromstring(render(empty, "svg"))
    validate_speedscope(render(empty, "speedscope"))
    assert render(empty, "collapsed") == ""
    assert "No samples" in render_summary(empty)


def test_sample_without_frames_renders_everywhere() -> None:
    result = ProfileResult.from_collapsed("a;b 3\n 2\n", rate=100)
    assert render(result, "collapsed") == " 2\na;b 3\n"
    assert ProfileResult.from_collapsed(render(result, "collapsed"), rate=100) == result
    validate_speedscope(render(result, "speedscope"))
    assert "all (5 samples" in render(result, "svg")


def test_summary_lists_pids_and_top_functions(result: ProfileResult) -> None:
    summary = render_summary(result, limit=2)
    assert summary.splitlines()[0] == "65 samples over 1.0s at 100 Hz; pids sampled: 10, 11, 12"
    own = summary.split("by own time:")[1].split("Top functions by total")[0]
    assert own.splitlines()[1].split() == ["76.9%", "50", "burn", "(app.py:9)"]


def test_one_sample_is_one_sample_not_one_samples() -> None:
    one = ProfileResult.from_collapsed("a;b 1\n", rate=100)
    assert render_summary(one).startswith("1 sample over ")


def test_unknown_format_says_which_exist(result: ProfileResult) -> None:
    with pytest.raises(ProfilingError, match="use one of: svg, speedscope, collapsed"):
        render(result, "png")
