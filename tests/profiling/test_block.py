from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

import obs
from obs.profiling.block import BlockProfile
from tests.profiling.conftest import speedscope_frame_names, validate_speedscope


def crunch_numbers(seconds: float = 0.05) -> int:
    deadline = time.perf_counter() + seconds
    total = 0
    while time.perf_counter() < deadline:
        total += sum(range(200))
    return total


def names_in(path: Path | None) -> set[str]:
    assert path is not None
    return speedscope_frame_names(validate_speedscope(path))


def test_with_block_writes_speedscope_and_html(tmp_path: Path) -> None:
    with obs.profile("nightly import", directory=tmp_path) as prof:
        crunch_numbers()
    assert isinstance(prof, BlockProfile)
    assert prof.html_path is not None and prof.html_path.parent == tmp_path
    assert prof.html_path.name.startswith("nightly_import-")
    assert "crunch_numbers" in names_in(prof.speedscope_path)
    assert "crunch_numbers" in prof.html_path.read_text()


def test_default_directory_is_obs_profile_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OBS_PROFILE_DIR", str(tmp_path / "from-env"))
    with obs.profile("job") as prof:
        crunch_numbers(0.01)
    assert prof.html_path is not None and prof.html_path.parent == tmp_path / "from-env"


def test_profiled_decorator_sync_and_async(tmp_path: Path) -> None:
    @obs.profiled(directory=tmp_path)
    def job() -> int:
        return crunch_numbers()

    @obs.profiled(name="async job", directory=tmp_path)
    async def async_job() -> int:
        await asyncio.sleep(0)
        return crunch_numbers()

    assert job() > 0
    assert asyncio.run(async_job()) > 0
    htmls = sorted(p.name for p in tmp_path.glob("*.html"))
    assert len(htmls) == 2
    assert any(n.startswith("async_job-") for n in htmls)
    assert any(n.startswith("test_profiled_decorator_sync_and_async._locals_.job-") for n in htmls)
    for speedscope in tmp_path.glob("*.speedscope.json"):
        assert "crunch_numbers" in names_in(speedscope)


def test_bare_decorator_keeps_the_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBS_PROFILE_DIR", str(tmp_path))

    @obs.profiled
    def add(a: int, b: int) -> int:
        """Adds."""
        return a + b

    assert add(2, 3) == 5
    assert add.__doc__ == "Adds."
    assert len(list(tmp_path.glob("*.html"))) == 1


def test_exception_is_propagated_and_profile_still_written(tmp_path: Path) -> None:
    def failing_job() -> None:
        with obs.profile("failing", directory=tmp_path) as prof:
            profiles.append(prof)
            crunch_numbers(0.01)
            _ = 1 / 0

    profiles: list[BlockProfile] = []
    with pytest.raises(ZeroDivisionError):
        failing_job()
    (prof,) = profiles
    assert prof.html_path is not None and prof.html_path.exists()


def test_nested_block_is_part_of_the_outer_profile(tmp_path: Path) -> None:
    with (
        obs.profile("outer", directory=tmp_path) as outer,
        obs.profile("inner", directory=tmp_path) as inner,
    ):
        crunch_numbers()
    assert inner.html_path is None
    assert "crunch_numbers" in names_in(outer.speedscope_path)
    assert len(list(tmp_path.glob("*.html"))) == 1
