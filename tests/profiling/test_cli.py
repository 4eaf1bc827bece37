from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from obs.cli import cli
from obs.profiling import cli as profiling_cli
from obs.profiling.cli import output_paths
from obs.profiling.pyspy import RecordOptions
from obs.profiling.result import ProfileResult


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_default_outputs_are_svg_and_speedscope_under_profiles() -> None:
    paths = output_paths(42, None, None)
    assert set(paths) == {"svg", "speedscope"}
    assert paths["svg"].parent == Path("profiles")
    assert paths["svg"].name.startswith("pid42-") and paths["svg"].name.endswith(".svg")
    assert paths["speedscope"].name == paths["svg"].name[: -len(".svg")] + ".speedscope.json"


def test_output_names_the_svg_and_the_speedscope_goes_beside_it() -> None:
    paths = output_paths(42, None, "out/run1.svg")
    assert paths == {"svg": Path("out/run1.svg"), "speedscope": Path("out/run1.speedscope.json")}


def test_output_with_a_format_is_kept_as_given() -> None:
    assert output_paths(42, "collapsed", "stacks.txt") == {"collapsed": Path("stacks.txt")}
    assert output_paths(42, "speedscope", None)["speedscope"].name.endswith(".speedscope.json")


def test_commands_are_registered(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert "profile" in result.output and "dump" in result.output
    help_text = runner.invoke(cli, ["profile", "--help"]).output
    for option in ("--duration", "--rate", "--format", "--output", "--idle", "--gil",
                   "--native", "--nonblocking", "--no-subprocesses"):  # fmt: skip
        assert option in help_text


def test_non_positive_duration_or_rate_is_a_usage_error(runner: CliRunner) -> None:
    for option in ("--duration", "--rate"):
        result = runner.invoke(cli, ["profile", "1", option, "0"])
        assert result.exit_code == 2
        assert f"Invalid value for '{option}'" in result.output


def test_unknown_format_is_rejected_by_click(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["profile", "1", "--format", "png"])
    assert result.exit_code == 2
    assert "'svg', 'speedscope', 'collapsed'" in result.output


@pytest.mark.parametrize(("flags", "nonblocking"), [([], True), (["--blocking"], False),
                                                    (["--nonblocking"], True)])  # fmt: skip
def test_sampling_does_not_pause_the_process_unless_asked(
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    flags: list[str],
    nonblocking: bool,
) -> None:
    seen: list[RecordOptions] = []

    def fake_record(pid: int, options: RecordOptions) -> ProfileResult:
        seen.append(options)
        raise SystemExit(0)  # stop before any file is written

    monkeypatch.setattr(profiling_cli, "record", fake_record)
    args = ["profile", str(os.getpid()), "--output", str(tmp_path / "p.svg"), *flags]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert [options.nonblocking for options in seen] == [nonblocking]
    assert ("pausing it for each sample" in result.output) is not nonblocking


ESC = "\x1b"
#: What a profiled process can name its functions: OSC 0 (title), OSC 52 (clipboard), CSI,
#: a C1 CSI, DEL and a newline that would forge a line of the summary.
HOSTILE = f"work{ESC}]0;PWNED{ESC}\\{ESC}]52;c;cm0gLXJmIH4K\a{ESC}[2J\x9b31m\x7f\nFAKE line"
CONTROL = set(map(chr, [*range(0x20), *range(0x7F, 0xA0)])) - {"\n"}


def test_the_summary_of_obs_profile_escapes_what_the_process_named(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from obs.profiling.result import StackSample

    def fake_record(pid: int, options: RecordOptions) -> ProfileResult:
        stacks = (StackSample(("main (app.py:1)", f"{HOSTILE} (/x{ESC}[8m.py:2)"), 40, pid),)
        return ProfileResult(stacks=stacks, pid=pid, duration=1.0, rate=100, name="x")

    monkeypatch.setattr(profiling_cli, "record", fake_record)
    args = ["profile", str(os.getpid()), "--output", str(tmp_path / "p.svg")]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert not CONTROL & set(result.output), repr(result.output)
    assert "work\\x1b]0;PWNED" in result.output and "\\x0aFAKE line" in result.output
    assert not [line for line in result.output.splitlines() if line.startswith("FAKE")]


def test_obs_dump_escapes_what_the_process_named(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(profiling_cli, "dump", lambda pid, **kwargs: f"Thread 1\n  {HOSTILE}\n")
    result = runner.invoke(cli, ["dump", str(os.getpid())])
    assert result.exit_code == 0, result.output
    assert not CONTROL & set(result.output), repr(result.output)
    assert result.output.startswith("Thread 1\n  work\\x1b]0;PWNED")
