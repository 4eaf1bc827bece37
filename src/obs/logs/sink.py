"""Where log lines go: whole lines, one write each, failures reported and never raised."""

from __future__ import annotations

import os
from typing import IO

from obs.selfreport import report_internal_error


class LineSink:
    """Writes whole lines to a stream, one ``write`` system call per line where possible.

    One system call per line keeps lines from several threads or worker processes sharing a
    pipe from interleaving. A failing write (closed pipe, full disk) is reported, never raised.
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

    def write(self, line: str | bytes) -> None:
        try:
            if self._fd is None:
                self.stream.write(line.decode() if isinstance(line, bytes) else line)
                self.stream.flush()
                return
            data = line if isinstance(line, bytes) else line.encode("utf-8", "backslashreplace")
            if not data.endswith(b"\n"):
                data += b"\n"
            if self._flush:
                self.stream.flush()
            written = os.write(self._fd, data)
            if written < len(data):  # a pipe or disk took part of it: write the rest
                view = memoryview(data)[written:]
                while view:
                    view = view[os.write(self._fd, view) :]
        except Exception as exc:
            report_internal_error("log sink", exc)
