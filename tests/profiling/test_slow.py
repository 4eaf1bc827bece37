"""The slow-request sampler in process: attribution per thread and per task, what is kept."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import threading
import time
import warnings
from pathlib import Path

import pytest

from obs.profiling.slow import SlowRequestProfiler
from obs.profiling.slow.store import ALL_SUFFIXES, list_profiles
from tests.profiling.slow_helpers import (
    compute_for,
    compute_template,
    functions_in,
    load_index,
    renamed,
    share_of,
    sleep_template,
    wait_template,
)


@pytest.fixture
def profiler(tmp_path: Path):  # type: ignore[no-untyped-def]
    profiler = SlowRequestProfiler(tmp_path / "slow", threshold=0.2, rate=100)
    yield profiler
    profiler.close()


def slow_thread_function() -> int:
    return compute_for(0.3)


async def slow_sleeping_coroutine() -> None:
    await asyncio.sleep(0.3)


async def slow_computing_coroutine() -> int:
    return compute_for(0.3)


def blocking_pool_function() -> None:
    end = time.perf_counter() + 0.3
    while time.perf_counter() < end:
        time.sleep(0.002)


async def yielding_generator():  # type: ignore[no-untyped-def]
    await slow_sleeping_coroutine()
    yield 1


async def through_async_generator() -> None:
    async for _ in yielding_generator():
        pass


async def through_awaited_task() -> None:
    await asyncio.create_task(slow_sleeping_coroutine())


async def _request(
    profiler: SlowRequestProfiler, work, request_id: str, min_samples: int = 0
) -> str | None:  # type: ignore[no-untyped-def]
    samples = profiler.begin()
    assert samples is not None
    started = time.perf_counter()
    await work()
    # A request with no sample keeps nothing: where a test needs the profile kept, it waits
    # (bounded) for the sampler thread, which a loaded machine can starve for longer than work.
    deadline = time.monotonic() + 10
    while samples.samples < min_samples and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return samples.finish(time.perf_counter() - started, "/r", request_id)


def test_a_thread_request_is_sampled_on_its_thread(profiler: SlowRequestProfiler) -> None:
    paths: list[str | None] = []

    def serve() -> None:
        samples = profiler.begin()
        assert samples is not None
        started = time.perf_counter()
        slow_thread_function()
        paths.append(samples.finish(time.perf_counter() - started, "/t", "rid-thread"))

    worker = threading.Thread(target=serve)
    worker.start()
    worker.join()
    profiler.close()
    assert paths[0] is not None and paths[0].endswith("rid-thread.svg")
    result = load_index(paths[0])
    assert result.samples >= 5  # 30 due at 100 Hz; a loaded 2-core VM starves the sampler
    assert share_of(result, "slow_thread_function") >= 0.7


@pytest.mark.parametrize(
    ("work", "function"),
    [
        (slow_sleeping_coroutine, "slow_sleeping_coroutine"),
        (slow_computing_coroutine, "slow_computing_coroutine"),
        (through_async_generator, "yielding_generator"),
        (through_awaited_task, "slow_sleeping_coroutine"),
        (lambda: asyncio.to_thread(blocking_pool_function), "blocking_pool_function"),
    ],
    ids=["sleep", "compute", "async-generator", "awaited-task", "to_thread"],
)
def test_an_async_request_shows_the_frames_it_waits_or_works_in(
    profiler: SlowRequestProfiler,
    work,
    function: str,  # type: ignore[no-untyped-def]
) -> None:
    path = asyncio.run(_request(profiler, work, "rid-async"))
    profiler.close()
    assert path is not None
    result = load_index(path)
    # A loop thread that computes lets the sampler in only at the GIL's switch interval, later
    # still on a loaded machine: fewer than the 30 samples of 0.3 s at 100 Hz.
    assert result.samples >= 5, result
    assert share_of(result, function) >= 0.7, result.function_stats()[:8]
    # Waiting shows the awaiting frames, never the event loop's select.
    assert "select" not in functions_in(result) and "EpollSelector.select" not in functions_in(
        result
    )


def test_a_fast_request_keeps_nothing(profiler: SlowRequestProfiler) -> None:
    async def quick() -> None:
        await asyncio.sleep(0.05)

    assert asyncio.run(_request(profiler, quick, "rid-fast")) is None
    profiler.close()
    assert not profiler.directory.exists() or not list(profiler.directory.iterdir())


def test_concurrent_requests_each_keep_only_their_own_functions(
    profiler: SlowRequestProfiler,
) -> None:
    """20 requests at once, each in its own named function; 8 slow (threads and tasks), 12 fast."""
    names = [f"work_of_request_{i}" for i in range(20)]
    slow = {i for i in range(20) if i % 5 in (0, 2)}  # 8 of 20
    paths: dict[int, str | None] = {}

    def thread_request(i: int) -> None:
        samples = profiler.begin()
        assert samples is not None
        started = time.perf_counter()
        # A fast request waits: computing, it would queue for the GIL behind the slow ones
        # and be slow too.
        renamed(compute_template if i in slow else wait_template, names[i])(
            0.4 if i in slow else 0.02
        )
        paths[i] = samples.finish(time.perf_counter() - started, "/t", f"rid-{i}")

    async def task_request(i: int) -> None:
        samples = profiler.begin()
        assert samples is not None
        started = time.perf_counter()
        await renamed(sleep_template, names[i])(0.4 if i in slow else 0.02)
        paths[i] = samples.finish(time.perf_counter() - started, "/a", f"rid-{i}")

    async def tasks() -> None:
        await asyncio.gather(*(task_request(i) for i in range(10, 20)))

    threads = [threading.Thread(target=thread_request, args=(i,)) for i in range(10)]
    threads.append(threading.Thread(target=asyncio.run, args=(tasks(),)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    profiler.close()
    assert {i for i, p in paths.items() if p is not None} == slow
    for i in slow:
        result = load_index(paths[i])  # type: ignore[arg-type]
        others = set(names) - {names[i]}
        assert names[i] in functions_in(result)
        assert not functions_in(result) & others, (i, functions_in(result) & others)
        # Eight threads compete for the GIL: a computing request is still mostly itself.
        assert share_of(result, names[i]) >= 0.7, (i, result.function_stats()[:5])


def test_profile_files_are_private_and_named_after_the_request(
    profiler: SlowRequestProfiler,
) -> None:
    path = asyncio.run(_request(profiler, slow_sleeping_coroutine, "abc/../x y"))
    profiler.close()
    assert path is not None
    directory = profiler.directory
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = sorted(p.name for p in directory.iterdir())
    assert files == [
        "abc_x_y.collapsed.txt",
        "abc_x_y.json",
        "abc_x_y.speedscope.json",
        "abc_x_y.summary.txt",
        "abc_x_y.svg",
    ]
    for name in files:
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
    meta = json.loads((directory / "abc_x_y.json").read_text())["request"]
    assert meta["id"] == "abc/../x y" and meta["route"] == "/r" and meta["pid"] == os.getpid()
    assert "slow_sleeping_coroutine" in (directory / "abc_x_y.summary.txt").read_text()
    assert (directory / "abc_x_y.svg").read_text().startswith("<?xml")


def test_a_repeated_request_id_gets_a_new_name_and_a_planted_symlink_is_not_followed(
    profiler: SlowRequestProfiler, tmp_path: Path
) -> None:
    profiler.directory.mkdir(mode=0o700)
    target = tmp_path / "victim"
    target.write_text("keep")
    (profiler.directory / "dup.json").symlink_to(target)
    first = asyncio.run(_request(profiler, slow_sleeping_coroutine, "dup"))
    second = asyncio.run(_request(profiler, slow_sleeping_coroutine, "dup"))
    profiler.close()
    assert target.read_text() == "keep"
    assert first == str(profiler.directory / f"dup-{os.getpid()}-1.svg")
    assert second == str(profiler.directory / f"dup-{os.getpid()}-2.svg")
    assert {p.request_id for p in list_profiles(profiler.directory)} == {"dup"}


def test_a_directory_others_can_write_is_refused(
    profiler: SlowRequestProfiler, capsys: pytest.CaptureFixture[str]
) -> None:
    profiler.directory.mkdir()
    profiler.directory.chmod(0o777)
    assert asyncio.run(_request(profiler, slow_sleeping_coroutine, "rid")) is None
    assert "others can write to it" in capsys.readouterr().err
    assert list(profiler.directory.iterdir()) == []


def test_retention_keeps_the_newest_files_within_count_and_bytes(tmp_path: Path) -> None:
    profiler = SlowRequestProfiler(tmp_path / "slow", threshold=0.01, rate=200, max_files=3)
    try:
        for i in range(5):
            asyncio.run(_request(profiler, lambda: asyncio.sleep(0.05), f"rid-{i}", 1))
            profiler.write_pending()
            time.sleep(0.01)  # distinct modification times
        assert [p.request_id for p in list_profiles(profiler.directory)] == [
            "rid-4",
            "rid-3",
            "rid-2",
        ]
        profiler.max_bytes = 1
        asyncio.run(_request(profiler, lambda: asyncio.sleep(0.05), "rid-5", 1))
        profiler.write_pending()
        assert [p.request_id for p in list_profiles(profiler.directory)] == ["rid-5"]
        assert len(list(profiler.directory.iterdir())) == 5
    finally:
        profiler.close()


@pytest.mark.parametrize(
    "suffix", [".speedscope", ".svg", ".summary", ".collapsed", ".json", "..x", "."]
)
def test_retention_counts_and_lists_every_profile_whatever_the_request_id(
    tmp_path: Path, suffix: str
) -> None:
    """An id with a dot made ``<id>.json`` look like a rendered file of another stem: those
    profiles escaped retention and ``list_profiles`` (a client could fill the disk)."""
    profiler = SlowRequestProfiler(tmp_path / "slow", threshold=0.01, rate=200, max_files=3)
    try:
        ids = ["normal-1", *(f"evil-{i}{suffix}" for i in range(6)), "normal-2"]
        for request_id in ids:
            asyncio.run(_request(profiler, lambda: asyncio.sleep(0.03), request_id, 1))
            profiler.write_pending()
            time.sleep(0.01)  # distinct modification times
        names = [p.name for p in profiler.directory.iterdir()]
        assert len(names) == 3 * 5, sorted(names)
        # No dot in a stem: every name is a stem plus exactly one of obs's suffixes.
        assert all("." + name.split(".", 1)[1] in ALL_SUFFIXES for name in names)
        kept = list_profiles(profiler.directory)
        assert [p.request_id for p in kept] == ["normal-2", f"evil-5{suffix}", f"evil-4{suffix}"]
        assert all(p.path("svg").is_file() and p.load().samples for p in kept)
    finally:
        profiler.close()


def test_retention_also_counts_files_an_earlier_version_wrote_for_dotted_ids(
    tmp_path: Path,
) -> None:
    from obs.profiling.slow.store import prune

    directory = tmp_path / "slow"
    directory.mkdir(mode=0o700)
    for n, stem in enumerate(["evil-1.speedscope", "evil-2.speedscope", "new-1", "new-2"]):
        for suffix in ALL_SUFFIXES:
            (directory / (stem + suffix)).write_text("x")
            os.utime(directory / (stem + suffix), (1000 + n, 1000 + n))
    (directory / "notes.txt").write_text("not obs's")
    assert prune(directory, max_files=2, max_bytes=10**9) == 2
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        ["notes.txt", *(stem + s for stem in ("new-1", "new-2") for s in ALL_SUFFIXES)]
    )


def test_write_pending_returns_once_the_writer_threads_profile_is_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from obs.profiling.slow import store

    writing = threading.Event()
    real = store.write_profile

    def slow_write(*args, **kwargs):  # type: ignore[no-untyped-def]
        writing.set()
        time.sleep(0.3)  # the writer thread is mid-write when the test calls write_pending()
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "write_profile", slow_write)
    profiler = SlowRequestProfiler(tmp_path / "slow", threshold=0.01, rate=200)
    try:
        asyncio.run(_request(profiler, lambda: asyncio.sleep(0.05), "rid", 1))
        assert writing.wait(10), "the writer thread never started writing"
        profiler.write_pending()
        assert [p.request_id for p in list_profiles(profiler.directory)] == ["rid"]
    finally:
        profiler.close()


def test_the_per_minute_cap_bounds_the_profiles_written(tmp_path: Path) -> None:
    async def three(profiler: SlowRequestProfiler) -> list[str | None]:
        sleep = lambda: asyncio.sleep(0.05)  # noqa: E731
        return [await _request(profiler, sleep, f"r{i}", min_samples=1) for i in range(3)]

    for attempt in range(3):  # the cap counts per calendar minute: not across a boundary
        profiler = SlowRequestProfiler(
            tmp_path / f"slow-{attempt}", threshold=0.01, rate=200, per_minute=2
        )
        minute = int(time.time() // 60)
        try:
            paths = asyncio.run(three(profiler))
        finally:
            profiler.close()
        if int(time.time() // 60) == minute:
            break
    else:
        pytest.fail("three attempts each straddled a minute boundary")
    assert [p is not None for p in paths] == [True, True, False]
    assert profiler.capped == 1


def test_the_sampler_starts_at_the_first_request_and_stops_at_close(
    profiler: SlowRequestProfiler,
) -> None:
    assert not any(t.name == "obs-slow-profiler" for t in threading.enumerate())
    samples = profiler.begin()
    assert samples is not None
    assert any(t.name == "obs-slow-profiler" for t in threading.enumerate())
    assert samples.finish(0.0) is None
    profiler.close()
    assert not any(t.name == "obs-slow-profiler" for t in threading.enumerate())


def test_a_forked_child_starts_its_own_sampler(profiler: SlowRequestProfiler) -> None:
    samples = profiler.begin()  # the parent's sampler is running
    assert samples is not None
    read, write = os.pipe()
    with warnings.catch_warnings():  # 3.12+ warns about forking with threads: the case tested
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        code = 1
        try:
            fresh = not profiler._requests and profiler._thread is None
            child = profiler.begin()
            started = time.perf_counter()
            slow_thread_function()
            path = child.finish(time.perf_counter() - started, "/c", "rid-child") if child else None
            profiler.close()
            ok = (
                fresh
                and path is not None
                and share_of(load_index(path), "slow_thread_function") >= 0.7
            )
            code = 0 if ok else 3
        finally:
            os.write(write, bytes([code]))
            os._exit(code)
    os.close(write)
    status = os.read(read, 1)
    os.close(read)
    os.waitpid(pid, 0)
    samples.finish(0.0)
    assert status == b"\x00"
    assert [p.pid for p in list_profiles(profiler.directory)] == [pid]


def test_settings_read_the_slow_profile_variables_and_refuse_bad_values() -> None:
    from obs.config import Settings
    from obs.exceptions import ConfigError

    settings = Settings.from_env(
        {
            "OBS_SLOW_PROFILES": "on",
            "OBS_SLOW_PROFILE_THRESHOLD": "0.25",
            "OBS_SLOW_PROFILE_RATE": "200",
            "OBS_SLOW_PROFILE_MAX_FILES": "7",
            "OBS_SLOW_PROFILE_MAX_BYTES": "1000",
            "OBS_SLOW_PROFILE_PER_MINUTE": "3",
            "OBS_PROFILE_DIR": "/tmp/p",
        }
    )
    profiler = SlowRequestProfiler.from_settings(settings)
    assert (profiler.threshold, profiler.rate, profiler.max_files) == (0.25, 200, 7)
    assert (profiler.max_bytes, profiler.per_minute) == (1000, 3)
    assert profiler.directory == Path("/tmp/p/slow")
    assert not Settings.from_env({}).slow_profiles
    with pytest.raises(ConfigError, match=r"OBS_SLOW_PROFILE_RATE='0' is invalid; use a number"):
        Settings.from_env({"OBS_SLOW_PROFILE_RATE": "0"})
    with pytest.raises(ConfigError, match="OBS_SLOW_PROFILE_THRESHOLD='soon'"):
        Settings.from_env({"OBS_SLOW_PROFILE_THRESHOLD": "soon"})


def test_requests_in_flight_are_sampled_while_a_profile_is_written(
    profiler: SlowRequestProfiler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writing a kept profile (rendering takes tens of milliseconds) happens off the sampler
    thread: a request running meanwhile is still sampled at the full rate."""
    writing = threading.Event()
    real_write = profiler._write

    def slow_write(pending):  # type: ignore[no-untyped-def]
        writing.set()
        time.sleep(0.6)  # a long render, on whichever thread writes
        real_write(pending)

    monkeypatch.setattr(profiler, "_write", slow_write)
    first = profiler.begin()
    assert first is not None
    started = time.perf_counter()
    slow_thread_function()
    assert first.finish(time.perf_counter() - started, "/a", "rid-first") is not None
    assert writing.wait(5)
    second = profiler.begin()  # runs while the first profile is being written
    assert second is not None
    started = time.perf_counter()
    slow_thread_function()
    assert second.samples >= 5, second.samples  # 30 due at 100 Hz; none if the sampler wrote
    assert second.finish(time.perf_counter() - started, "/b", "rid-second") is not None
    profiler.close()
    assert {p.request_id for p in list_profiles(profiler.directory)} == {"rid-first", "rid-second"}


def test_idle_requests_in_flight_cannot_multiply_the_samplers_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients choose how many requests are in flight (idle slow-body uploads): a tick walks at
    most MAX_SAMPLED_PER_TICK of them, in turn, and each sample stands for the ticks since that
    request's previous one, so every request's profile still covers its whole time."""
    from obs.profiling.slow import sampler

    limit = sampler.MAX_SAMPLED_PER_TICK
    profiler = SlowRequestProfiler(tmp_path / "slow", threshold=0.0, rate=50)
    monkeypatch.setattr(profiler, "_start", lambda: None)  # ticks driven by the test
    in_flight = 7 * limit + 3

    async def main() -> None:
        release = asyncio.Event()
        begun: list[sampler.RequestSamples] = []

        async def idle_upload() -> None:
            samples = profiler.begin()
            assert samples is not None
            begun.append(samples)
            await release.wait()

        tasks = [asyncio.create_task(idle_upload()) for _ in range(in_flight)]
        await asyncio.sleep(0)
        assert len(begun) == in_flight
        ticks = 5 * 8  # five full rounds
        for _ in range(ticks):
            before = sum(s.samples for s in begun)
            profiler.sample_once()
            assert sum(s.samples for s in begun) - before == limit
        assert all(s.samples >= 4 for s in begun)
        for s in begun:  # every tick of each request's time is counted, once
            assert s.stacks is not None
            counted = sum(count for count, _ in s.stacks.values())
            assert ticks - 8 <= counted <= ticks, counted
        release.set()
        await asyncio.gather(*tasks)

    try:
        asyncio.run(main())
    finally:
        profiler.close()
