"""The pieces cached loggers reach through, so that reconfiguring takes effect everywhere."""

from __future__ import annotations

import logging
import sys
import threading
from typing import ClassVar

from structlog.typing import Processor

from obs.logs.fast import JsonLine
from obs.logs.sink import LineSink


class LogState:
    """What :func:`~obs.logs.pipeline.configure_logging` set up, read at every line."""

    min_level: ClassVar[int] = logging.INFO
    sink: ClassVar[LineSink] = LineSink(sys.stdout)
    processors: ClassVar[list[Processor]] = []
    #: obs's own JSON chain in one call, when obs's JSON chain is configured (set explicitly by
    #: ``configure_logging``), for :class:`~obs.logs.emitter.EventEmitter`.
    json_line: ClassVar[JsonLine | None] = None
    lock: ClassVar[threading.Lock] = threading.Lock()
    #: Whether ``configure_logging`` ran; until it does, obs's own lines go through structlog's
    #: current configuration (the app's, or structlog's defaults) instead.
    configured: ClassVar[bool] = False
