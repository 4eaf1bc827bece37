"""A small sampler for the threads a profiled request hands its work to.

pyinstrument samples only the thread that started it. Starlette and FastAPI run a sync handler in
a thread-pool worker, so a request profile started on the event loop would show only an ``await``.
:class:`ThreadSampler` fills that gap: every few milliseconds it reads the Python stacks of the
other threads (``sys._current_frames``) and keeps those that used CPU since the last look, in
pyinstrument's frame-record format so both end up in one profile.

Limitation: threads cannot be tied to a request from outside, so work of *other* requests running
in other threads at the same time appears too, each under its own thread's root frame.
"""

from __future__ import annotations

import sys
import threading
import time
from types import FrameType

from obs.profiling._compat import frame_identifier, root_identifier

FrameRecord = tuple[list[str], float]


def thread_cpu_time(ident: int) -> float | None:
    """CPU seconds used by thread *ident* so far, or ``None`` where the OS cannot tell."""
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(ident))
    except (AttributeError, OSError, OverflowError):
        return None


def frame_stack(frame: FrameType | None, thread_name: str, ident: int) -> list[str]:
    """*frame*'s call stack, root first, as pyinstrument frame identifiers."""
    stack: list[str] = []
    while frame is not None:
        code = frame.f_code
        stack.append(
            frame_identifier(code.co_qualname, code.co_filename, code.co_firstlineno, frame.f_lineno)
        )
        frame = frame.f_back
    stack.append(root_identifier(thread_name, "<thread>", ident))
    stack.reverse()
    return stack


class ThreadSampler:
    """Samples the stacks of busy threads other than *exclude*, for at most *max_duration*."""

    def __init__(
        self, exclude: set[int], *, interval: float = 0.002, max_duration: float = 30.0
    ) -> None:
        self.exclude = set(exclude)
        self.interval = interval
        self.max_duration = max_duration
        self.records: list[FrameRecord] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="obs-profile-sampler", daemon=True)

    def start(self) -> None:
        """Begin sampling in a daemon thread."""
        self._thread.start()

    def stop(self) -> list[FrameRecord]:
        """Stop sampling and return the records collected."""
        self._stopped.set()
        if self._thread.ident is not None and self._thread is not threading.current_thread():
            self._thread.join()
        return self.records

    def _run(self) -> None:
        me = threading.get_ident()
        deadline = time.monotonic() + self.max_duration
        # Threads already running start from their CPU time now; threads born later from zero.
        last_cpu: dict[int, float] = {}
        for ident in sys._current_frames():
            cpu = thread_cpu_time(ident)
            if cpu is not None:
                last_cpu[ident] = cpu
        last_seen = time.perf_counter()
        while not self._stopped.wait(self.interval):
            now = time.perf_counter()
            elapsed, last_seen = now - last_seen, now
            if time.monotonic() > deadline:
                break
            names = {t.ident: t.name for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident == me or ident in self.exclude:
                    continue
                cpu = thread_cpu_time(ident)
                if cpu is None:
                    continue
                previous = last_cpu.get(ident, 0.0)
                last_cpu[ident] = cpu
                if cpu <= previous:
                    continue  # waiting, not working
                name = names.get(ident, "thread")
                self.records.append((frame_stack(frame, name, ident), elapsed))
            del frame
