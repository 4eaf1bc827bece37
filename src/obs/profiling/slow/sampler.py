"""Always-on, tail-kept request profiles: every request in flight is sampled; slow ones are kept.

A daemon thread wakes ``rate`` times a second and, for each request in flight (at most
:data:`MAX_SAMPLED_PER_TICK` of them a tick, in turn), records one wall-clock sample of the stack
*that request* is in:

- a request on a thread (WSGI workers, gthread): that thread's stack (``sys._current_frames``);
- an async request whose task is running: the loop thread's stack, cut at the task's coroutine;
- an async request whose task is suspended: the chain of awaits it waits in (coroutines, async
  generators, awaited tasks), so a request slow because it awaits a database or a sleep shows
  the awaiting frames, not the event loop's ``select``; and when it waits for a pool thread
  running its sync handler (Starlette/FastAPI ``run_in_threadpool``, ``asyncio.to_thread``), that
  thread's stack after it. The pool thread is tied to the request through the context it runs:
  :meth:`SlowRequestProfiler.begin` puts the request's handle in a context variable, and pool
  threads run a copy of the request's context.

Samples go into a small bounded per-request buffer (identical stacks counted once). When the
request finishes faster than the threshold the buffer is dropped; otherwise its name is reserved
at once (so the access line can name the flame graph) and a writer thread renders and writes
the files off the request path, then applies retention. A thread of its own: rendering takes tens
of milliseconds a profile, and the sampler thread, had it written them, would have missed the
requests in flight meanwhile (a slow request finishing while others' profiles were written kept
one sample or none). A per-minute cap bounds the writing.

A forked worker starts its own sampler at its first request (``os.register_at_fork``); the
sampler and the writer stop, writing what is pending, at interpreter exit or
:meth:`SlowRequestProfiler.close`.
Nothing here raises into a request: failures are counted in ``obs_internal_errors_total``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import os
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any

from obs.profiling.slow import _compat, store
from obs.selfreport import report_internal_error

if TYPE_CHECKING:
    from obs.config import Settings

COMPONENT = "slow request profiling"
#: Distinct stacks kept per request; further new stacks are counted under one ``[other]`` stack.
MAX_STACKS = 1000
#: Requests sampled at once; a request beyond this is served unprofiled.
MAX_IN_FLIGHT = 512
#: A request in flight longer than this stops being sampled (its buffer is dropped at once).
MAX_REQUEST_SECONDS = 300.0
#: Requests walked per sampler tick, at most. Walking one request's stack (its await chain, or
#: its thread's frames) holds the GIL for microseconds, and clients choose how many requests are
#: in flight: 500 idle slow-body uploads walked 50 times a second cost 20 % of a core (0.2 %
#: without slow profiles; /tmp/probe-sec/sampler_dos.py). Beyond this many in flight, requests
#: are walked in turn, and each sample counts the ticks since that request's previous one, so a
#: profile's shares and times stay right; up to this many, every request is walked every tick.
MAX_SAMPLED_PER_TICK = 32

_CURRENT: contextvars.ContextVar[RequestSamples | None] = contextvars.ContextVar(
    "obs_slow_profile", default=None
)
_OTHER: tuple[str, ...] = ("[other stacks]",)
_LIVE: weakref.WeakSet[SlowRequestProfiler] = weakref.WeakSet()
_SHARED: dict[tuple[Any, ...], SlowRequestProfiler] = {}
_SHARED_LOCK = threading.Lock()


def frame_name(code: CodeType) -> str:
    """A code object as a collapsed-stack frame: ``qualname (file:first line)``.

    The function's first line, not the sampled line, so one function is one frame in the summary.
    """
    return f"{code.co_qualname} ({code.co_filename}:{code.co_firstlineno})"


def _innermost_first(frame: FrameType | None, stop: FrameType | None = None) -> list[FrameType]:
    stack: list[FrameType] = []
    while frame is not None and len(stack) < _compat.MAX_DEPTH:
        stack.append(frame)
        if frame is stop:
            break
        frame = frame.f_back
    return stack


class RequestSamples:
    """The samples of one request in flight; :meth:`finish` keeps or drops them."""

    __slots__ = ("coro", "done", "last", "profiler", "samples", "stacks", "started", "task",
                 "thread", "token")  # fmt: skip

    def __init__(self, profiler: SlowRequestProfiler, thread: int, task: Any) -> None:
        self.profiler = profiler
        self.thread = thread
        self.task = task
        self.coro = None if task is None else task.get_coro()
        self.started = profiler.ticks  # the sampler's clock: no system call per request
        #: The tick of the last visit: a sample stands for the ticks since (1 unless more
        #: than MAX_SAMPLED_PER_TICK requests are in flight).
        self.last = self.started
        #: stack key (code ids) -> [count, code objects root first]; made at the first sample,
        #: which most fast requests never get
        self.stacks: dict[tuple[int, ...], list[Any]] | None = None
        self.samples = 0
        self.done = False
        self.token: contextvars.Token[RequestSamples | None] | None = None

    def add(self, codes: tuple[CodeType, ...], ticks: int = 1) -> None:
        """Count one sample standing for *ticks* sampler ticks (sampler thread only)."""
        if self.done or self.samples >= self.profiler.max_samples:
            return
        self.samples += 1
        stacks = self.stacks
        if stacks is None:
            stacks = self.stacks = {}
        key = tuple(map(id, codes))
        entry = stacks.get(key)
        if entry is not None:
            entry[0] += ticks
        elif len(stacks) < MAX_STACKS:
            stacks[key] = [ticks, codes]
        else:
            other = stacks.setdefault((), [0, ()])
            other[0] += ticks

    def finish(
        self, duration_s: float, route: str | None = None, request_id: str | None = None
    ) -> str | None:
        """The request ended after *duration_s*: return the kept profile's SVG path, or ``None``.

        ``None`` for a request faster than the threshold, one without samples, or one over the
        per-minute cap. Never raises; a second call does nothing.
        """
        if self.done:
            return None
        self.done = True
        profiler = self.profiler
        try:
            profiler._requests.pop(self, None)
            if self.token is not None:
                try:
                    _CURRENT.reset(self.token)
                except ValueError:  # finished in another context: nothing of ours bound here
                    pass
            if duration_s < profiler.threshold or not self.samples:
                return None
            return profiler._keep(self, duration_s, route, request_id)
        except Exception as exc:
            report_internal_error(COMPONENT, exc)
            return None


@dataclass
class _Pending:
    stem: str
    index_fd: int
    samples: RequestSamples
    request: dict[str, Any]


class SlowRequestProfiler:
    """Samples every request in flight and keeps the profiles of those slower than *threshold*.

    Build one per process (:meth:`shared`); call :meth:`begin` on the request's thread or task
    when it starts and :meth:`RequestSamples.finish` when it ends.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        threshold: float = 1.0,
        rate: int = 50,
        max_files: int = 100,
        max_bytes: int = 50_000_000,
        per_minute: int = 10,
        max_request_seconds: float = MAX_REQUEST_SECONDS,
    ) -> None:
        self.directory = Path(directory)
        self.threshold = threshold
        self.rate = rate
        self.interval = 1.0 / rate
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.per_minute = per_minute
        self.max_request_seconds = max_request_seconds
        self.max_samples = max(1, int(rate * max_request_seconds))
        self.max_ticks = self.max_samples
        #: Profiles not kept because of the per-minute cap, since start.
        self.capped = 0
        self._reset()
        _LIVE.add(self)

    def _reset(self) -> None:
        """Fresh state: at construction and in a forked child (the parent's thread is gone)."""
        self._lock = threading.Lock()
        #: Held while writing, so that write_pending() returns only once every profile kept
        #: before the call is on disk, the writer thread's current one included.
        self._write_lock = threading.Lock()
        self._requests: dict[RequestSamples, None] = {}
        self._pending: deque[_Pending] = deque()
        self._thread: threading.Thread | None = None
        self._writer: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake_writer = threading.Event()
        #: Sampler wake-ups so far: requests note it at begin, to be dropped after max_ticks.
        self.ticks = 0
        self._minute = -1
        self._kept_this_minute = 0
        self._unnamed = 0
        #: Where the next tick's walk starts when more than MAX_SAMPLED_PER_TICK are in flight.
        self._cursor = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> SlowRequestProfiler:
        """A profiler configured by the ``OBS_SLOW_PROFILE*`` settings and ``OBS_PROFILE_DIR``."""
        return cls(
            store.directory_for(settings.profile_dir),
            threshold=settings.slow_profile_threshold,
            rate=settings.slow_profile_rate,
            max_files=settings.slow_profile_max_files,
            max_bytes=settings.slow_profile_max_bytes,
            per_minute=settings.slow_profile_per_minute,
        )

    @classmethod
    def shared(cls, settings: Settings) -> SlowRequestProfiler:
        """The process's profiler for these settings: one sampler thread however many
        middlewares are built."""
        key = (
            settings.profile_dir,
            settings.slow_profile_threshold,
            settings.slow_profile_rate,
            settings.slow_profile_max_files,
            settings.slow_profile_max_bytes,
            settings.slow_profile_per_minute,
        )
        with _SHARED_LOCK:
            profiler = _SHARED.get(key)
            if profiler is None:
                profiler = _SHARED[key] = cls.from_settings(settings)
            return profiler

    # -- the request side --------------------------------------------------------------------

    def begin(self) -> RequestSamples | None:
        """Start sampling the calling thread's or task's request; ``None`` if it cannot be."""
        try:
            if len(self._requests) >= MAX_IN_FLIGHT:
                return None
            loop = _compat.running_loop()
            task = None if loop is None else asyncio.current_task(loop)
            samples = RequestSamples(self, threading.get_ident(), task)
            if task is not None:
                samples.token = _CURRENT.set(samples)
            # One dict operation each in begin and finish, atomic under the GIL; the sampler
            # copies the keys with list(), also atomic. The lock guards only starting the thread.
            self._requests[samples] = None
            if self._thread is None:
                with self._lock:
                    if self._thread is None:
                        self._start()
            return samples
        except Exception as exc:
            report_internal_error(COMPONENT, exc)
            return None

    def _start(self) -> None:
        self._stop = threading.Event()
        thread = threading.Thread(target=self._run, name="obs-slow-profiler", daemon=True)
        thread.start()
        self._thread = thread

    def _keep(
        self, samples: RequestSamples, duration: float, route: str | None, request_id: str | None
    ) -> str | None:
        now = time.time()
        with self._lock:
            minute = int(now // 60)
            if minute != self._minute:
                self._minute, self._kept_this_minute = minute, 0
            if self._kept_this_minute >= self.per_minute:
                self.capped += 1
                return None
            self._kept_this_minute += 1
            if request_id is None:
                self._unnamed += 1
                request_id = f"request-{os.getpid()}-{self._unnamed}"
        dir_fd = store.open_private_directory(self.directory)
        try:
            stem, index_fd = store.reserve(dir_fd, request_id)
        finally:
            os.close(dir_fd)
        request = {
            "id": request_id,
            "route": route or "",
            "duration": duration,
            "time": now,
            "pid": os.getpid(),
            "threshold": self.threshold,
        }
        with self._lock:
            self._pending.append(_Pending(stem, index_fd, samples, request))
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_loop, name="obs-slow-profile-writer", daemon=True
                )
                self._writer.start()
        self._wake_writer.set()
        return str(self.directory / (stem + store.RENDERED["svg"]))

    # -- the sampler thread ------------------------------------------------------------------

    def _run(self) -> None:
        stop = self._stop
        while not stop.wait(self.interval):
            try:
                self.sample_once()
            except Exception as exc:
                report_internal_error(COMPONENT, exc)

    def _write_loop(self) -> None:
        wake, stop = self._wake_writer, self._stop
        while not stop.is_set():
            wake.wait()
            wake.clear()
            self.write_pending()  # never raises

    def sample_once(self) -> None:
        """Record one sample of every request in flight, or of the next
        :data:`MAX_SAMPLED_PER_TICK` of them in turn (the sampler thread calls this)."""
        self.ticks += 1
        requests = list(self._requests)
        if not requests:
            return
        batch = requests
        if len(requests) > MAX_SAMPLED_PER_TICK:
            start = self._cursor % len(requests)
            batch = requests[start : start + MAX_SAMPLED_PER_TICK]
            batch += requests[: MAX_SAMPLED_PER_TICK - len(batch)]
            self._cursor = start + MAX_SAMPLED_PER_TICK
        frames = _compat.current_frames()
        now = self.ticks
        pools: dict[RequestSamples, list[FrameType]] | None = None
        for samples in batch:
            if now - samples.started > self.max_ticks:
                samples.done = True
                self._requests.pop(samples, None)
                continue
            ticks, samples.last = now - samples.last, now
            stack: list[FrameType] | None = None  # root first
            if samples.task is None:
                stack = _innermost_first(frames.get(samples.thread))
                stack.reverse()
            else:
                coro = samples.coro
                if _compat.is_running(coro):
                    top = getattr(coro, "cr_frame", None)
                    running = _innermost_first(frames.get(samples.thread), top)
                    if running and running[-1] is top:
                        running.reverse()
                        stack = running
                if stack is None:
                    stack = _compat.await_chain(coro)
                    if pools is None:
                        pools = self._pool_threads(frames, requests, batch)
                    stack.extend(pools.get(samples, ()))
            if stack:
                samples.add(tuple(frame.f_code for frame in stack), max(ticks, 1))
        del frames

    def _pool_threads(
        self,
        frames: dict[int, FrameType],
        requests: list[RequestSamples],
        sampled: list[RequestSamples],
    ) -> dict[RequestSamples, list[FrameType]]:
        """Pool threads running work for an async request being *sampled*: their frames, root
        first (the threads of every request in flight are not pool threads)."""
        skip = {threading.get_ident()} | {r.thread for r in requests}
        wanted = set(sampled)
        found: dict[RequestSamples, list[FrameType]] = {}
        for ident, frame in frames.items():
            if ident in skip:
                continue
            stack = _innermost_first(frame)
            hit = _compat.pool_context(stack)
            if hit is None:
                continue
            index, context = hit
            owner = context.get(_CURRENT)
            if owner is not None and owner in wanted:
                found[owner] = stack[index::-1]
        return found

    def write_pending(self) -> None:
        """Render and write the profiles kept so far, then apply retention; returns once they
        are all on disk, whichever thread writes them."""
        with self._write_lock:
            while True:
                with self._lock:
                    if not self._pending:
                        return
                    pending = self._pending.popleft()
                try:
                    self._write(pending)
                except Exception as exc:
                    report_internal_error(COMPONENT, exc)

    def _write(self, pending: _Pending) -> None:
        from obs.profiling.result import ProfileResult, StackSample

        names: dict[int, str] = {}
        stacks = []
        for count, codes in (pending.samples.stacks or {}).values():
            frames = tuple(
                names.get(id(c)) or names.setdefault(id(c), frame_name(c)) for c in codes
            )
            stacks.append(StackSample(frames or _OTHER, count, os.getpid()))
        stacks.sort(key=lambda s: s.frames)
        request = pending.request
        result = ProfileResult(
            stacks=tuple(stacks),
            pid=os.getpid(),
            duration=request["duration"],
            rate=self.rate,
            command_line=f"request {request['id']} {request['route']}".rstrip(),
            name=f"request {request['id']}",
        )
        dir_fd = store.open_private_directory(self.directory)
        try:
            store.write_profile(dir_fd, pending.stem, pending.index_fd, result, request)
        finally:
            os.close(dir_fd)
        store.prune(self.directory, self.max_files, self.max_bytes)

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self, timeout: float = 5.0) -> None:
        """Stop the sampler and writer threads and write the profiles still pending.
        Idempotent."""
        with self._lock:
            threads = (self._thread, self._writer)
            self._thread = self._writer = None
            self._stop.set()
        self._wake_writer.set()
        for thread in threads:
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)
        self.write_pending()

    def _after_fork_in_child(self) -> None:
        for pending in self._pending:
            try:
                os.close(pending.index_fd)  # the parent writes its own
            except OSError:
                pass
        self._reset()


def _close_all() -> None:
    for profiler in list(_LIVE):
        try:
            profiler.close()
        except Exception as exc:
            report_internal_error(COMPONENT, exc)


def _after_fork() -> None:
    for profiler in list(_LIVE):
        profiler._after_fork_in_child()


atexit.register(_close_all)
os.register_at_fork(after_in_child=_after_fork)
