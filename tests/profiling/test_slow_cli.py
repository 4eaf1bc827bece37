"""``obs profiles list|show|open`` over profiles the sampler really kept."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from obs.cli import cli
from obs.profiling.slow import SlowRequestProfiler


async def checkout_waits_for_the_bank() -> None:
    await asyncio.sleep(0.25)


@pytest.fixture(scope="module")
def profile_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OBS_PROFILE_DIR with two kept profiles (req-a, then req-b) and one fast request."""
    root = tmp_path_factory.mktemp("profiles")
    profiler = SlowRequestProfiler(root / "slow", threshold=0.2, rate=100)

    async def request(request_id: str, seconds: float) -> None:
        samples = profiler.begin()
        assert samples is not None
        started = time.perf_counter()
        await (checkout_waits_for_the_bank() if seconds else asyncio.sleep(0.01))
        samples.finish(time.perf_counter() - started, "/checkout", request_id)

    async def requests() -> None:
        await request("req-a", 0.25)
        await asyncio.sleep(1.1)  # list shows seconds: a distinct time for each
        await request("req-b", 0.25)
        await request("req-fast", 0)

    asyncio.run(requests())
    profiler.close()
    return root


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_list_shows_the_newest_first_with_route_duration_and_id(profile_dir: Path) -> None:
    code, out, _ = run("profiles", "list", env={"OBS_PROFILE_DIR": str(profile_dir)})
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["time", "duration", "route", "request", "id"]
    assert [line.split()[-1] for line in lines[1:]] == ["req-b", "req-a"]
    assert all("/checkout" in line and "ms" in line for line in lines[1:])


def test_show_prints_the_summary_with_the_slow_function(profile_dir: Path) -> None:
    code, out, _ = run("profiles", "show", "req-a", "--dir", str(profile_dir / "slow"))
    assert code == 0, out
    assert out.startswith("request req-a  /checkout")
    assert "Top functions by own time:" in out and "Top functions by total time:" in out
    total = out.split("Top functions by total time:", 1)[1]
    line = next(x for x in total.splitlines() if "checkout_waits_for_the_bank" in x)
    assert float(line.split("%")[0]) >= 70.0
    assert out.rstrip().endswith("req-a.svg")


def test_open_prints_the_svg_path(profile_dir: Path) -> None:
    code, out, _ = run("profiles", "open", "req-b", "--dir", str(profile_dir / "slow"))
    assert code == 0
    path = Path(out.strip())
    assert path == profile_dir / "slow" / "req-b.svg"
    assert path.read_text().startswith("<?xml")


def test_an_unknown_id_is_one_clear_error(profile_dir: Path) -> None:
    code, _, err = run("profiles", "show", "req-fast", "--dir", str(profile_dir / "slow"))
    assert code == 1
    assert err.startswith("Error: no profile of request id 'req-fast'")
    assert "obs profiles list" in err


def test_an_empty_or_missing_directory_is_one_clear_error(tmp_path: Path) -> None:
    for args in (["list"], ["open", "x"]):
        code, _, err = run("profiles", *args, "--dir", str(tmp_path / "nothing"))
        assert code == 1
        assert err.startswith("Error: no slow-request profiles in") and "OBS_SLOW_PROFILES=1" in err


def test_a_unique_prefix_of_an_id_is_enough_an_ambiguous_one_is_refused(tmp_path: Path) -> None:
    profiler = SlowRequestProfiler(tmp_path / "slow", threshold=0.05, rate=100)

    async def requests() -> None:
        for request_id in ("5b2e0c11", "5b2e9f22", "77aa0d33"):
            samples = profiler.begin()
            assert samples is not None
            started = time.perf_counter()
            await checkout_waits_for_the_bank()
            samples.finish(time.perf_counter() - started, "/checkout", request_id)

    asyncio.run(requests())
    profiler.close()
    slow = str(tmp_path / "slow")
    code, out, _ = run("profiles", "open", "77a", "--dir", slow)
    assert code == 0 and Path(out.strip()).name == "77aa0d33.svg"
    code, out, _ = run("profiles", "show", "5b2e9", "--dir", slow)
    assert code == 0 and out.startswith("request 5b2e9f22  /checkout")
    code, _, err = run("profiles", "show", "5b2e", "--dir", slow)
    assert code == 1
    assert err == (
        "Error: 2 request ids start with '5b2e'; give more of the id (`obs profiles list` "
        "shows them).\n"
    )


def test_the_profile_directory_itself_as_dir_points_at_its_slow_subdirectory(
    profile_dir: Path,
) -> None:
    code, _, err = run("profiles", "list", "--dir", str(profile_dir))
    assert code == 1
    assert err == (
        f"Error: no slow-request profiles in {profile_dir}, but {profile_dir / 'slow'} has some: "
        f"pass --dir {profile_dir / 'slow'}\n"
    )


ESC = "\x1b"
CONTROL = set(map(chr, [*range(0x20), *range(0x7F, 0xA0)])) - {"\n"}


def plant_crafted_profile(directory: Path) -> None:
    """A profile whose strings carry terminal escapes (as /tmp/probe-sec/crafted_profiles.py)."""
    directory.mkdir(parents=True, mode=0o700)
    route = f"{ESC}]0;owned-title{ESC}\\{ESC}[2J{ESC}[H{ESC}[31mFAKE: all good{ESC}[0m\x9b2J"
    frames = [f"main ({ESC}[8mhidden{ESC}[0m)", f"evil{ESC}]52;c;ZWNobyBwd25lZA=={ESC}\\"]
    document = {
        "version": 1, "name": "x", "pid": 1, "duration": 1.0, "rate": 50, "command_line": "",
        "processes": {}, "stacks": [{"frames": frames, "count": 5, "pid": 1}],
        "request": {"id": f"abc{ESC}]52;c;eA=={ESC}\\", "route": route, "duration": 2.0,
                    "time": time.time(), "pid": f"1{ESC}[2J"},
    }  # fmt: skip
    (directory / "abc.json").write_text(json.dumps(document))


def test_list_and_show_escape_what_the_profile_holds(tmp_path: Path) -> None:
    directory = tmp_path / "slow"
    plant_crafted_profile(directory)
    code, listed, err = run("profiles", "list", "--dir", str(directory))
    assert code == 0, err
    assert "\\x1b]0;owned-title" in listed and "abc\\x1b]52;c;" in listed
    code, shown, err = run(
        "profiles", "show", f"abc{ESC}]52;c;eA=={ESC}\\", "--dir", str(directory)
    )
    assert code == 0, err
    assert "evil\\x1b]52;c;" in shown and "pid 1\\x1b[2J" in shown and "\\x9b2J" in shown
    for out in (listed, shown):
        assert not CONTROL & set(out), repr(out)


def test_a_directory_another_user_owns_or_others_can_write_is_not_read(
    tmp_path: Path, stranger: int
) -> None:
    directory = tmp_path / "slow"
    plant_crafted_profile(directory)
    os.chown(directory, stranger, stranger)
    code, out, err = run("profiles", "list", "--dir", str(directory))
    assert code == 1 and out == ""
    assert err.startswith("Error: not reading profiles from a directory another user could")
    assert f"owned by uid {stranger}" in err and err.count("\n") == 1, err
    os.chown(directory, 0, 0)
    directory.chmod(0o777)
    code, out, err = run("profiles", "show", "abc", "--dir", str(directory))
    assert code == 1 and out == "" and "chmod go-w" in err and err.count("\n") == 1, err
    directory.chmod(0o700)
    parent = tmp_path / "shared"
    parent.mkdir(mode=0o755)
    (directory).rename(parent / "slow")
    os.chown(parent, stranger, stranger)  # the parent theirs: they could swap slow/ at will
    code, out, err = run("profiles", "list", "--dir", str(parent / "slow"))
    assert code == 1 and f"{parent}, above" in err, err
