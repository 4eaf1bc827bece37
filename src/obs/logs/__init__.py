"""Logs: one structlog + standard-library pipeline for the whole process (:mod:`.pipeline`),
its processors, redaction, the line sink, the request context and the access line's fast path.
"""

from __future__ import annotations

from obs.logs.pipeline import SERVER_LOGGERS, configure_logging, get_logger

__all__ = ["SERVER_LOGGERS", "configure_logging", "get_logger"]
