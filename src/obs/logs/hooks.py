"""Uncaught exceptions as log lines: ``sys.excepthook`` and ``threading.excepthook``.

Without them the interpreter prints an uncaught exception's traceback as plain multi-line
text, the one thing in the process's output that is not a log line.
"""

from __future__ import annotations

import sys
import threading
from types import TracebackType
from typing import Any

import structlog

#: The logger of the lines about uncaught exceptions.
LOGGER = "obs.uncaught"


def install() -> None:
    """Log uncaught exceptions (of the main thread and of other threads) through obs's
    pipeline; called by ``configure_logging``, once however often it is called.

    ``KeyboardInterrupt`` is left to the hook that was there (Ctrl-C prints its usual
    traceback), and so is any exception when logging it fails. A hook installed before obs
    (not the interpreter's default) is still called after obs's line.
    """
    if not getattr(sys.excepthook, "obs_previous", None):
        sys.excepthook = _main_thread_hook(sys.excepthook)
    if not getattr(threading.excepthook, "obs_previous", None):
        threading.excepthook = _thread_hook(threading.excepthook)


def uninstall() -> None:
    """Put back the hooks :func:`install` replaced."""
    previous = getattr(sys.excepthook, "obs_previous", None)
    if previous is not None:
        sys.excepthook = previous
    previous = getattr(threading.excepthook, "obs_previous", None)
    if previous is not None:
        threading.excepthook = previous


def _main_thread_hook(previous: Any) -> Any:
    def obs_excepthook(
        exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            previous(exc_type, exc, tb)
            return
        try:
            structlog.get_logger(LOGGER).critical(
                "uncaught exception", exc_info=(exc_type, exc, tb)
            )
        except Exception:
            previous(exc_type, exc, tb)
            return
        if previous is not sys.__excepthook__:
            previous(exc_type, exc, tb)

    obs_excepthook.obs_previous = previous  # type: ignore[attr-defined]
    return obs_excepthook


def _thread_hook(previous: Any) -> Any:
    def obs_thread_excepthook(args: Any) -> None:
        if args.exc_type is SystemExit:  # ignored, as by the default hook
            return
        if issubclass(args.exc_type, KeyboardInterrupt):
            previous(args)
            return
        try:
            thread = args.thread.name if args.thread is not None else None
            structlog.get_logger(LOGGER).error(
                "uncaught exception in thread",
                thread=thread,
                exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
            )
        except Exception:
            previous(args)
            return
        if previous is not threading.__excepthook__:
            previous(args)

    obs_thread_excepthook.obs_previous = previous  # type: ignore[attr-defined]
    return obs_thread_excepthook
