from __future__ import annotations

import asyncio
import re
import stat
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from starlette.concurrency import run_in_threadpool

from obs.config import Settings
from obs.exceptions import ConfigError
from obs.profiling.request import INTERVAL, ActiveProfile, RequestProfiler
from tests.profiling.conftest import speedscope_frame_names, validate_speedscope

TOKEN = "s3cret-token-0123456"


def hot_sync_handler_work(seconds: float = 0.15) -> int:
    # Until the deadline and a third of it in CPU time of this thread: a sampler that records
    # a thread only when its CPU time rose sees a starved one barely, or not at all.
    deadline = time.perf_counter() + seconds
    cpu_end = time.thread_time() + seconds / 3
    total = 0
    while time.perf_counter() < deadline or time.thread_time() < cpu_end:
        total += sum(range(200))
    return total


async def hot_async_handler_work(seconds: float = 0.15, min_rounds: int = 20) -> int:
    # A wall-clock deadline alone can pass while a stalled VM or the other requests hold the
    # CPU, leaving the profiled task next to no samples: some rounds of work always run. Each
    # round works for a few sampling intervals before it yields: with rounds shorter than one
    # interval, several concurrent requests leave pyinstrument's in-context samples to chance
    # (seen: 1 profile in 20 without the handler at 75 us rounds, three requests at once).
    deadline = time.perf_counter() + seconds
    total = rounds = 0
    while time.perf_counter() < deadline or rounds < min_rounds:
        round_end = time.perf_counter() + 3 * INTERVAL
        while time.perf_counter() < round_end:
            total += sum(range(200))
        rounds += 1
        await asyncio.sleep(0)  # let other requests run now and then
    return total


async def other_request_work(seconds: float = 0.15) -> int:
    deadline = time.perf_counter() + seconds
    total = 0
    while time.perf_counter() < deadline:
        for _ in range(50):
            total += sum(range(200))
        await asyncio.sleep(0)
    return total


def stop_now(profile: ActiveProfile | None) -> None:
    assert profile is not None
    profile.stop()


@pytest.fixture
def profiler(tmp_path: Path) -> RequestProfiler:
    return RequestProfiler(TOKEN, tmp_path / "profiles")


def frames_of(profile: ActiveProfile, profiler: RequestProfiler) -> set[str]:
    path = profiler.directory / f"{profile.profile_id}.speedscope.json"
    return speedscope_frame_names(validate_speedscope(path))


def test_disabled_without_token(tmp_path: Path) -> None:
    profiler = RequestProfiler(None, tmp_path / "p")
    assert profiler.enabled is False
    assert profiler.start(TOKEN, "r1") is None
    assert profiler.start(None, "r1") is None
    assert not (tmp_path / "p").exists()


def test_from_settings() -> None:
    profiler = RequestProfiler.from_settings(Settings(profile_token=TOKEN, profile_dir="/tmp/x"))
    assert profiler.enabled is True and profiler.directory == Path("/tmp/x")
    assert RequestProfiler.from_settings(Settings()).enabled is False


@pytest.mark.parametrize("token", ["", "a", " " * 20, "x" * 15])
def test_short_or_empty_tokens_are_refused_through_the_api(tmp_path: Path, token: str) -> None:
    with pytest.raises(ConfigError, match="at least 16"):
        RequestProfiler(token, tmp_path)
    with pytest.raises(ConfigError, match="at least 16"):
        RequestProfiler.from_settings(Settings(profile_token=token, profile_dir=str(tmp_path)))


@pytest.mark.parametrize(
    "presented", [None, "", "wrong", TOKEN + "x", TOKEN[:-1], "s3cret-token-012345é"]
)
def test_wrong_or_missing_token_profiles_nothing(
    profiler: RequestProfiler, presented: str | None
) -> None:
    assert profiler.enabled is True
    assert profiler.start(presented, "r1") is None
    assert hot_sync_handler_work(0.01) > 0  # the request is served as usual
    assert not profiler.directory.exists()
    stop_now(profiler.start(TOKEN, "r2"))  # and the slot was never taken


def test_async_handler_profile_names_hot_function(profiler: RequestProfiler) -> None:
    async def request() -> str | None:
        profile = profiler.start(TOKEN, "req/1 ../x")
        assert profile is not None
        assert re.fullmatch(r"req_1_\.\._x-[0-9a-f]{12}", profile.profile_id)
        await hot_async_handler_work()
        return profile.stop()

    html = asyncio.run(request())
    assert html is not None and re.fullmatch(r"req_1_\.\._x-[0-9a-f]{12}\.html", Path(html).name)
    assert Path(html).parent == profiler.directory
    assert "hot_async_handler_work" in frames_of_path(profiler, Path(html).name[: -len(".html")])
    assert "hot_async_handler_work" in Path(html).read_text()
    assert stat.S_IMODE(Path(html).stat().st_mode) == 0o600
    assert stat.S_IMODE(profiler.directory.stat().st_mode) == 0o700


def frames_of_path(profiler: RequestProfiler, stem: str) -> set[str]:
    return speedscope_frame_names(
        validate_speedscope(profiler.directory / f"{stem}.speedscope.json")
    )


def test_sync_handler_in_starlette_threadpool(profiler: RequestProfiler) -> None:
    async def request() -> ActiveProfile:
        profile = profiler.start(TOKEN, "threadpool")
        assert profile is not None
        await run_in_threadpool(hot_sync_handler_work)
        assert profile.stop() is not None
        return profile

    profile = asyncio.run(request())
    assert "hot_sync_handler_work" in frames_of(profile, profiler)


def test_sync_handler_in_anyio_worker_thread(profiler: RequestProfiler) -> None:
    async def request() -> ActiveProfile:
        profile = profiler.start(TOKEN, "anyio")
        assert profile is not None
        await anyio.to_thread.run_sync(hot_sync_handler_work)
        assert profile.stop() is not None
        return profile

    profile = anyio.run(request)
    assert "hot_sync_handler_work" in frames_of(profile, profiler)


def test_wsgi_style_profile_in_a_worker_thread(profiler: RequestProfiler) -> None:
    done: dict[str, Any] = {}

    def wsgi_request() -> None:
        profile = profiler.start(TOKEN, "wsgi")
        assert profile is not None
        hot_sync_handler_work()
        done["html"] = profile.stop()
        done["profile"] = profile

    worker = threading.Thread(target=wsgi_request)
    worker.start()
    worker.join()
    assert done["html"] is not None
    assert "hot_sync_handler_work" in frames_of(done["profile"], profiler)


def test_two_concurrent_starts_only_one_profiles(profiler: RequestProfiler) -> None:
    barrier = threading.Barrier(2)
    got: list[ActiveProfile | None] = []
    release = threading.Event()

    def request(rid: str) -> None:
        barrier.wait()
        profile = profiler.start(TOKEN, rid)
        got.append(profile)
        release.wait(5)
        if profile is not None:
            profile.stop()

    threads = [threading.Thread(target=request, args=(f"r{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    while len(got) < 2:
        time.sleep(0.001)
    release.set()
    for t in threads:
        t.join()
    assert sum(p is not None for p in got) == 1
    stop_now(profiler.start(TOKEN, "after"))  # the slot is free again


def test_two_concurrent_profiled_requests_do_not_corrupt_each_other(
    profiler: RequestProfiler,
) -> None:
    async def request(rid: str, work: Any) -> tuple[ActiveProfile | None, int, str | None]:
        profile = profiler.start(TOKEN, rid)
        result = await work()
        html = profile.stop() if profile is not None else None
        return profile, result, html

    async def both() -> list[tuple[ActiveProfile | None, int, str | None]]:
        return list(
            await asyncio.gather(
                request("first", hot_async_handler_work), request("second", other_request_work)
            )
        )

    (first, r1, html1), (second, r2, html2) = asyncio.run(both())
    assert r1 > 0 and r2 > 0  # both served
    assert first is not None and html1 is not None
    assert second is None and html2 is None  # one profile at a time: served unprofiled
    names = frames_of(first, profiler)
    assert "hot_async_handler_work" in names
    assert "other_request_work" not in names  # the other task's time is not in this profile
    assert sorted(re.sub("-[0-9a-f]{12}", "", p.name) for p in profiler.directory.iterdir()) == [
        "first.html",
        "first.speedscope.json",
    ]


def test_same_request_id_twice_gets_two_files(profiler: RequestProfiler) -> None:
    for _ in range(2):
        profile = profiler.start(TOKEN, "dup")
        assert profile is not None
        profile.stop()
    names = sorted(p.name for p in profiler.directory.glob("*.html"))
    assert len(names) == 2 and all(re.fullmatch(r"dup-[0-9a-f]{12}\.html", n) for n in names)


def test_files_kept_are_capped(tmp_path: Path) -> None:
    profiler = RequestProfiler(TOKEN, tmp_path, max_files=2)
    for i in range(4):
        profile = profiler.start(TOKEN, f"r{i}")
        assert profile is not None
        hot_sync_handler_work(0.005)
        profile.stop()
        time.sleep(0.01)  # distinct modification times
    assert sorted(re.sub("-[0-9a-f]{12}", "", p.name) for p in tmp_path.iterdir()) == [
        "r2.html", "r2.speedscope.json", "r3.html", "r3.speedscope.json",
    ]  # fmt: skip


def test_duration_is_capped(tmp_path: Path) -> None:
    profiler = RequestProfiler(TOKEN, tmp_path, max_duration=0.05)
    profile = profiler.start(TOKEN, "long")
    assert profile is not None
    hot_sync_handler_work(0.3)
    profile.stop()
    document = validate_speedscope(tmp_path / f"{profile.profile_id}.speedscope.json")
    assert document["profiles"][0]["endValue"] <= 0.06


def test_stop_never_raises_and_frees_the_slot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    profiler = RequestProfiler(TOKEN, blocker)
    profile = profiler.start(TOKEN, "r1")
    assert profile is not None
    assert profile.stop() is None
    assert profile.stop() is None  # a second call does nothing
    assert "obs: request profiling failed" in capsys.readouterr().err
    stop_now(RequestProfiler(TOKEN, tmp_path / "ok").start(TOKEN, "r2"))
    assert profiler._active is None


def test_a_profile_that_never_stops_frees_the_slot_after_twice_its_cap(tmp_path: Path) -> None:
    profiler = RequestProfiler(TOKEN, tmp_path, max_duration=30)
    started = threading.Event()
    finish = threading.Event()

    def stuck_request() -> None:
        profile = profiler.start(TOKEN, "stuck")
        started.set()
        finish.wait(5)
        assert profile is not None
        profile.stop()

    worker = threading.Thread(target=stuck_request)
    worker.start()
    started.wait(5)
    assert profiler.start(TOKEN, "blocked") is None
    stuck = profiler._active
    assert stuck is not None and not stuck.is_stale()
    stuck.started -= 61  # as if it had run for twice its cap and a second more
    fresh = profiler.start(TOKEN, "fresh")
    assert fresh is not None
    fresh.stop()
    finish.set()
    worker.join()
    assert len(list(tmp_path.glob("stuck-*.html"))) == 1
    assert (tmp_path / f"{fresh.profile_id}.html").exists()
