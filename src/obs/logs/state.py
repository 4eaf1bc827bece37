"""The pieces cached loggers reach through, so that reconfiguring takes effect everywhere."""

from __future__ import annotations

import logging
import sys
import threading

from structlog.typing import Processor

from obs.logs.fast import JsonLine
from obs.logs.sink import LineSink


class LogState:
    """What :func:`~obs.logs.pipeline.configure_logging` set up, read at every line; the one
    instance is :data:`STATE`.

    An instance with slots rather than class attributes: Python 3.11 specialises attribute
    reads on such an instance, not on a class (bench/instructions.py: about 800 instructions
    per access line).
    """

    __slots__ = ("configured", "json_line", "lock", "min_level", "processors", "sink")

    def __init__(self) -> None:
        self.min_level: int = logging.INFO
        self.sink: LineSink = LineSink(sys.stdout)
        self.processors: list[Processor] = []
        #: obs's own JSON chain in one call, when obs's JSON chain is configured (set
        #: explicitly by ``configure_logging``), for :class:`~obs.logs.emitter.EventEmitter`.
        self.json_line: JsonLine | None = None
        self.lock = threading.Lock()
        #: Whether ``configure_logging`` ran; until it does, obs's own lines go through
        #: structlog's current configuration (the app's, or structlog's defaults) instead.
        self.configured = False


#: The logging state of the process.
STATE = LogState()
