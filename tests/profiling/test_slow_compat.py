"""Each private CPython, asyncio and anyio detail ``obs.profiling.slow._compat`` relies on, named.

A release that changes one of these fails here first, with the detail in the test's name.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import threading
import time
import types
from typing import Any

import anyio
import anyio.to_thread

from obs.profiling.slow import _compat


def test_sys_current_frames_gives_every_threads_frame() -> None:
    assert _compat.current_frames is sys._current_frames
    frames = _compat.current_frames()
    assert (
        frames[threading.get_ident()].f_code
        is test_sys_current_frames_gives_every_threads_frame.__code__
    )


def test_asyncio_get_running_loop_private_returns_none_outside_a_loop() -> None:
    assert _compat.running_loop() is None

    async def inside() -> bool:
        return _compat.running_loop() is asyncio.get_running_loop()

    assert asyncio.run(inside())


def test_wrapper_type_names_are_those_python_uses() -> None:
    async def coro() -> None:
        pass

    async def agen():  # type: ignore[no-untyped-def]
        yield 1

    loop = asyncio.new_event_loop()
    try:
        c = coro()
        wrapper = c.__await__()
        g = agen()
        asend = g.asend(None)
        athrow = g.athrow(ValueError)
        future_iter = loop.create_future().__await__()
        names = {type(o).__name__ for o in (wrapper, asend, athrow, future_iter)}
        assert names == _compat.WRAPPER_TYPES
        # gc.get_referents reaches what each wraps.
        assert _compat._unwrap(wrapper) is c
        assert _compat._unwrap(asend) is g
        assert isinstance(_compat._unwrap(future_iter), asyncio.Future)
        for o in (asend, athrow):
            o.close()
        wrapper.close()
        c.close()
    finally:
        loop.close()


def test_coroutine_cr_await_and_cr_running() -> None:
    async def leaf() -> None:
        await asyncio.sleep(0.05)

    async def root() -> None:
        assert _compat.is_running(task.get_coro())
        await leaf()

    async def main() -> list[str]:
        nonlocal task
        task = asyncio.create_task(root())
        await asyncio.sleep(0.01)
        assert not _compat.is_running(task.get_coro())
        names = [f.f_code.co_name for f in _compat.await_chain(task.get_coro())]
        await task
        return names

    task: Any = None
    assert asyncio.run(main()) == ["root", "leaf", "sleep"]


def test_anyio_worker_thread_run_holds_the_copied_context_in_context() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("probe")
    seen: list[tuple[int, str] | None] = []

    def work() -> None:
        stack = []
        frame: types.FrameType | None = sys._getframe()
        while frame is not None:
            stack.append(frame)
            frame = frame.f_back
        hit = _compat.pool_context(stack)
        seen.append(None if hit is None else (stack[hit[0]].f_code.co_qualname, hit[1].get(var)))

    async def main() -> None:
        var.set("mine")
        await anyio.to_thread.run_sync(work)

    anyio.run(main)
    assert _compat._anyio_worker_run() is not None
    assert seen == [("WorkerThread.run", "mine")]


def test_an_idle_anyio_worker_in_queue_get_is_not_working_for_anyone() -> None:
    async def main() -> None:
        await anyio.to_thread.run_sync(lambda: None)
        time.sleep(0.05)  # the worker is back in queue.get
        frames = _compat.current_frames()
        workers = [t for t in threading.enumerate() if type(t).__name__ == "WorkerThread"]
        assert workers
        for worker in workers:
            stack = []
            frame: types.FrameType | None = frames[worker.ident]  # type: ignore[index]
            while frame is not None:
                stack.append(frame)
                frame = frame.f_back
            assert _compat.pool_context(stack) is None

    anyio.run(main)


def test_concurrent_futures_work_item_run_fn_is_partial_of_context_run() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("probe")
    seen: list[Any] = []

    def work() -> None:
        stack = []
        frame: types.FrameType | None = sys._getframe()
        while frame is not None:
            stack.append(frame)
            frame = frame.f_back
        hit = _compat.pool_context(stack)
        seen.append(None if hit is None else (stack[hit[0]].f_code.co_qualname, hit[1].get(var)))

    async def main() -> None:
        var.set("mine")
        await asyncio.to_thread(work)

    asyncio.run(main())
    assert seen == [("_WorkItem.run", "mine")]
