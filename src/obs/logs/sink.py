"""Where log lines go: whole lines, one write each, failures reported and never raised."""

from __future__ import annotations

import os
import select
import threading
import time
import weakref
from typing import IO

from obs.selfreport import report_internal_error

#: Longest wait for a non-blocking descriptor (a pipe whose reader is slow) to accept a line
#: before the line is dropped, whole, and counted.
WAIT_SECONDS = 1.0
#: Longest wait to finish a line that was partly written: giving up would tear it.
FINISH_SECONDS = 10.0
#: ``obs_internal_errors_total`` component of lines dropped whole (the reader did not keep up).
DROPPED = "log sink dropped line"


class LineSink:
    """Writes whole lines to a stream, one ``write`` system call per line where possible.

    One system call per line keeps lines from several threads of a process from interleaving,
    and lines of several processes sharing a pipe too as long as each is at most ``PIPE_BUF``
    (4,096 bytes on Linux): the kernel may write a longer line to a pipe in pieces, and another
    process's line can land between them (20 KB lines from several processes: about half torn).
    A failing write (closed pipe, full disk) is reported, never raised.

    A line written while the same thread is already inside :meth:`write` (a signal handler
    that logs, a ``__del__`` or garbage-collector callback run in the middle of a line) is
    queued and written by the outer call right after its own line: it never waits for a lock
    its own thread holds, and never lands inside the outer line. A child forked while another
    thread was writing starts with the sink unlocked.

    A non-blocking descriptor (an event loop's stdout, a pipe set ``O_NONBLOCK`` by a
    supervisor) may take part of a line and then refuse with ``EAGAIN``: the sink waits for it,
    bounded, and never leaves a torn line. A line the descriptor does not start to take within
    :data:`WAIT_SECONDS` is dropped whole and counted (component :data:`DROPPED`); one it took
    part of is finished within :data:`FINISH_SECONDS`, and if even that fails, the next line
    starts on a new line instead of being glued to the fragment. So does the line after one a
    failing descriptor took part of (``ENOSPC`` on a full disk, ``EIO``, ``EPIPE``).
    """

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self._fd: int | None
        try:
            self._fd = stream.fileno()
        except (AttributeError, OSError, ValueError):
            self._fd = None
        # Lines go straight to the file descriptor; anything print() left in the stream's
        # buffer must go out first, or it would land after (or inside) later lines. A
        # line-buffered stream never holds a whole line back, so it needs no flush per line.
        self._flush = not getattr(stream, "line_buffering", False)
        # A line finished after EAGAIN must not be interleaved by another thread's line.
        # Re-entrant, so that a call from the thread that holds it (a signal handler, a
        # __del__) gets it at once and queues its line in _pending instead of waiting forever.
        self._lock = threading.RLock()
        self._busy = False
        self._pending: list[bytes] = []
        self._torn = False
        _SINKS.add(self)

    def _after_fork_in_child(self) -> None:
        """The thread that held the lock at fork() does not exist in the child."""
        self._lock = threading.RLock()
        self._busy = False
        self._pending = []

    def write(self, line: str | bytes) -> None:
        try:
            if self._fd is None:
                text = line.decode() if isinstance(line, bytes) else line
                self.stream.write(text if text.endswith("\n") else text + "\n")
                self.stream.flush()
                return
            data = line if isinstance(line, bytes) else line.encode("utf-8", "backslashreplace")
            if not data.endswith(b"\n"):
                data += b"\n"
            # acquire/release rather than ``with``: no __exit__ call (bench/instructions.py:
            # about 700 instructions per line).
            lock = self._lock
            lock.acquire()
            try:
                if self._busy:  # this thread is inside write() already: its line goes first
                    self._pending.append(data)
                    return
                self._busy = True
                try:
                    if self._flush:
                        self.stream.flush()
                    # The first line inline rather than through _write_line: one call less
                    # per line on the access line's path.
                    if self._torn:
                        data = b"\n" + data
                    try:
                        written = os.write(self._fd, data)
                    except BlockingIOError:
                        written = 0
                    if written:
                        self._torn = False
                    if written < len(data):  # a pipe or disk took part of it, or none
                        self._finish(data, written)
                    while self._pending:
                        self._write_line(self._pending.pop(0))
                finally:
                    self._busy = False
            finally:
                lock.release()
        except Exception as exc:
            report_internal_error("log sink", exc)

    def _write_line(self, data: bytes) -> None:
        fd = self._fd
        assert fd is not None
        if self._torn:
            data = b"\n" + data
        try:
            written = os.write(fd, data)
        except BlockingIOError:
            written = 0
        if written:
            self._torn = False
        if written < len(data):  # a pipe or disk took part of it, or none
            self._finish(data, written)

    def _finish(self, data: bytes, written: int) -> None:
        """Write the rest of *data*, waiting (bounded) while the descriptor refuses."""
        fd = self._fd
        assert fd is not None
        view = memoryview(data)[written:]
        start = time.monotonic()
        poller: select.poll | None = None
        while view:
            try:
                view = view[os.write(fd, view) :]
                continue
            except BlockingIOError:
                pass
            except OSError as exc:  # ENOSPC, EPIPE, EIO: the line cannot be finished
                if len(view) < len(data):  # and part of it went out: the next starts anew
                    self._torn = True
                report_internal_error("log sink", exc)
                return
            limit = WAIT_SECONDS if len(view) == len(data) else FINISH_SECONDS
            left = limit - (time.monotonic() - start)
            if left <= 0:
                if len(view) == len(data):
                    report_internal_error(DROPPED, BlockingIOError("the reader did not keep up"))
                else:
                    self._torn = True
                    report_internal_error("log sink", BlockingIOError("a line was cut short"))
                return
            if poller is None:
                poller = select.poll()
                poller.register(fd, select.POLLOUT)
            poller.poll(min(left, 0.05) * 1000)


_SINKS: weakref.WeakSet[LineSink] = weakref.WeakSet()


def _reset_sinks_in_child() -> None:
    for sink in list(_SINKS):
        sink._after_fork_in_child()


os.register_at_fork(after_in_child=_reset_sinks_in_child)
