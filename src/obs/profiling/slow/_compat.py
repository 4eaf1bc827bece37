"""Every private CPython, asyncio and anyio detail the slow-request sampler reads, in one place.

Each name here is named again by ``tests/profiling/test_slow_compat.py``, so a Python or anyio
release that changes one fails that test, not a production request:

- ``sys._current_frames()``: the current frame of every thread (CPython's, also used by
  ``faulthandler``-like tools and Sentry's profiler);
- ``asyncio._get_running_loop()``: the running loop or ``None``, without raising;
- the awaitable wrappers with no Python attribute leading to what they wrap (``FutureIter``,
  ``coroutine_wrapper``, ``async_generator_asend``/``athrow``), read with ``gc.get_referents``;
- the frames that run a *copied context* in a pool thread, and the local variable holding it:
  anyio's ``WorkerThread.run`` (``context``; Starlette's and FastAPI's ``run_in_threadpool``) and
  ``concurrent.futures.thread._WorkItem.run`` (``self.fn`` = ``partial(context.run, ...)``, which
  is how ``asyncio.to_thread`` propagates the context). A pool thread idle in ``queue.Queue.get``
  still holds the previous item's context, so that frame is recognised too.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import gc
import queue
import sys
import types
from collections.abc import Callable
from concurrent.futures import thread as _futures_thread
from typing import Any

#: Deepest stack or await chain followed: deeper ones are cut (a runaway recursion stays cheap).
MAX_DEPTH = 256

current_frames: Callable[[], dict[int, types.FrameType]] = sys._current_frames
running_loop: Callable[[], asyncio.AbstractEventLoop | None] = asyncio._get_running_loop

#: Wrappers whose only link to the awaitable they wrap is their C-level reference to it.
WRAPPER_TYPES: frozenset[str] = frozenset(
    {"FutureIter", "coroutine_wrapper", "async_generator_asend", "async_generator_athrow"}
)
_QUEUE_GET = queue.Queue.get.__code__
_WORK_ITEM_RUN = _futures_thread._WorkItem.run.__code__
_ANYIO_MODULE = "anyio._backends._asyncio"
_anyio_run: types.CodeType | None = None


def is_running(coro: Any) -> bool:
    """True while *coro* (a task's coroutine) is executing on its loop's thread."""
    return bool(getattr(coro, "cr_running", False) or getattr(coro, "gi_running", False))


def _unwrap(wrapper: Any) -> Any:
    for referent in gc.get_referents(wrapper):
        if isinstance(
            referent,
            types.CoroutineType | types.GeneratorType | types.AsyncGeneratorType | asyncio.Future,
        ):
            return referent
    return None


def await_chain(coro: Any) -> list[types.FrameType]:
    """The frames a suspended coroutine is waiting in, outermost first.

    Follows coroutines (``cr_await``), generator-based awaits (``gi_yieldfrom``), async
    generators (``ag_await``, reached through ``async for``'s ``asend`` wrapper) and awaited
    tasks (into the awaited task's own coroutine). Stops at a plain future: what it waits for
    (a socket, a timer, a thread) has no Python frame.
    """
    frames: list[types.FrameType] = []
    current: Any = coro
    for _ in range(MAX_DEPTH):
        if current is None:
            break
        if isinstance(current, types.CoroutineType):
            frame, current = current.cr_frame, current.cr_await
        elif isinstance(current, types.GeneratorType):
            frame, current = current.gi_frame, current.gi_yieldfrom
        elif isinstance(current, types.AsyncGeneratorType):
            frame, current = current.ag_frame, current.ag_await
        elif isinstance(current, asyncio.Task):
            current = current.get_coro()
            continue
        elif isinstance(current, asyncio.Future):
            break
        elif type(current).__name__ in WRAPPER_TYPES:
            current = _unwrap(current)
            continue
        else:
            break
        if frame is not None:
            frames.append(frame)
    return frames


def _anyio_worker_run() -> types.CodeType | None:
    """anyio's worker-thread loop, once anyio's asyncio backend is imported (never imported here)."""
    global _anyio_run
    if _anyio_run is None:
        module = sys.modules.get(_ANYIO_MODULE)
        worker = getattr(module, "WorkerThread", None)
        run = getattr(worker, "run", None)
        _anyio_run = getattr(run, "__code__", None)
    return _anyio_run


def pool_context(stack: list[types.FrameType]) -> tuple[int, contextvars.Context] | None:
    """The context a pool thread is running work in, and the index of the pool frame in *stack*.

    *stack* is the thread's frames, innermost first. ``None`` when the thread is no such pool
    thread, or is idle between work items.
    """
    anyio_run = _anyio_worker_run()
    for index, frame in enumerate(stack):
        code = frame.f_code
        context: Any = None
        if code is anyio_run and anyio_run is not None:
            if index == 0 or stack[index - 1].f_code is _QUEUE_GET:
                return None  # idle: the local still holds the previous item's context
            context = frame.f_locals.get("context")
        elif code is _WORK_ITEM_RUN:
            fn = getattr(frame.f_locals.get("self"), "fn", None)
            if isinstance(fn, functools.partial):
                context = getattr(fn.func, "__self__", None)
        else:
            continue
        if isinstance(context, contextvars.Context):
            return index, context
        return None
    return None
