"""obs's structlog bound logger: log calls that never raise, at a level reconfiguring changes.

structlog's ``make_filtering_bound_logger`` formats ``event % args`` and maps a level number
to its name before any processor runs, so ``log.info("%s %s", "one")``, ``log.log(35, "x")`` and
``log.info()`` raised into the caller; and its level is frozen into the class it returns, so
loggers cached before ``configure_logging()`` was called again kept the old level.
:class:`ObsBoundLogger` is one class whose level methods :func:`set_level` swaps: a method
below the level is a ``return None``, as in structlog, and loggers handed out earlier follow.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any

from structlog import BoundLoggerBase, DropEvent

from obs.logs.levels import NAME_OF_NUMBER, standard_number
from obs.logs.state import STATE

#: Said on a line whose ``%`` arguments did not fit its message (kept as ``positional_args``).
BAD_ARGS_NOTE = "the arguments did not match the message's % placeholders"


def _interpolate(event: Any, args: tuple[Any, ...], kw: dict[str, Any]) -> Any:
    """``event % args`` as the standard library does it; when that fails, *event* unchanged,
    the arguments in ``positional_args`` and a note in ``obs_error``."""
    try:
        if len(args) == 1 and isinstance(args[0], Mapping) and args[0]:
            return event % args[0]
        return event % args
    except Exception:
        kw["positional_args"] = args
        kw["obs_error"] = BAD_ARGS_NOTE
        return event


def _nop(self: Any, *args: Any, **kw: Any) -> None:
    return None


async def _anop(self: Any, *args: Any, **kw: Any) -> None:
    return None


class ObsBoundLogger(BoundLoggerBase):
    """The wrapper class :func:`~obs.logs.pipeline.configure_logging` gives structlog.

    The methods of structlog's filtering logger (``debug`` … ``critical``, ``warn``, ``fatal``,
    ``msg``, ``exception``, ``log``, their ``a``-prefixed async variants, ``is_enabled_for``,
    ``get_effective_level``), none of which raises: bad ``%`` arguments log the message and the
    arguments unformatted, with a note; a level number outside the standard five logs at the
    standard level at or below it; no event logs an empty one.
    """

    #: The level :func:`set_level` set last.
    min_level = logging.INFO

    def _log(self, method_name: str, event: Any, kw: dict[str, Any]) -> Any:
        if event is None and "event" not in kw:
            event = ""
        try:
            args, kwargs = self._process_event(method_name, event, kw)
            return getattr(self._logger, method_name)(*args, **kwargs)
        except DropEvent:
            return None

    def log(self, level: Any, event: Any = None, /, *args: Any, **kw: Any) -> Any:
        number = standard_number(level)
        if number < self.min_level:
            return None
        if args:
            event = _interpolate(event, args, kw)
        return self._log(NAME_OF_NUMBER[number], event, kw)

    async def alog(self, level: Any, event: Any = None, /, *args: Any, **kw: Any) -> Any:
        number = standard_number(level)
        if number < self.min_level:
            return None
        if args:
            event = _interpolate(event, args, kw)
        return await self._in_executor(NAME_OF_NUMBER[number], event, kw)

    async def _in_executor(self, method_name: str, event: Any, kw: dict[str, Any]) -> Any:
        # As structlog's async methods: the line is processed in the default executor, in a
        # copy of the caller's context (its bound request id included).
        if kw.get("exc_info") is True:
            kw["exc_info"] = sys.exc_info()  # gone once the executor runs the call
        ctx = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, ctx.run, self._log, method_name, event, kw)

    def is_enabled_for(self, level: Any) -> bool:
        return standard_number(level) >= self.min_level

    def get_effective_level(self) -> int:
        return self.min_level

    # Replaced by set_level(); declared for readers and type checkers.
    debug: Callable[..., Any]
    info: Callable[..., Any]
    msg: Callable[..., Any]
    warning: Callable[..., Any]
    warn: Callable[..., Any]
    error: Callable[..., Any]
    exception: Callable[..., Any]
    critical: Callable[..., Any]
    fatal: Callable[..., Any]
    adebug: Callable[..., Any]
    ainfo: Callable[..., Any]
    amsg: Callable[..., Any]
    awarning: Callable[..., Any]
    awarn: Callable[..., Any]
    aerror: Callable[..., Any]
    aexception: Callable[..., Any]
    acritical: Callable[..., Any]
    afatal: Callable[..., Any]


def _method(method_name: str, exc_info: bool) -> Callable[..., Any]:
    def log_at_level(self: ObsBoundLogger, event: Any = None, /, *args: Any, **kw: Any) -> Any:
        if exc_info:
            kw.setdefault("exc_info", True)
        if args:
            event = _interpolate(event, args, kw)
        return self._log(method_name, event, kw)

    log_at_level.__name__ = "exception" if exc_info else method_name
    return log_at_level


def _async_method(method_name: str, exc_info: bool) -> Callable[..., Any]:
    async def alog_at_level(
        self: ObsBoundLogger, event: Any = None, /, *args: Any, **kw: Any
    ) -> Any:
        if exc_info:
            kw.setdefault("exc_info", True)
        if args:
            event = _interpolate(event, args, kw)
        return await self._in_executor(method_name, event, kw)

    alog_at_level.__name__ = "a" + method_name
    return alog_at_level


#: ``(attribute, level number, method, its stand-in below the level)`` of every level method.
_METHODS: tuple[tuple[str, int, Callable[..., Any], Callable[..., Any]], ...] = tuple(
    entry
    for attribute, number, method_name, exc_info in (
        ("debug", logging.DEBUG, "debug", False),
        ("info", logging.INFO, "info", False),
        ("msg", logging.INFO, "info", False),
        ("warning", logging.WARNING, "warning", False),
        ("warn", logging.WARNING, "warning", False),
        ("error", logging.ERROR, "error", False),
        ("exception", logging.ERROR, "error", True),
        ("critical", logging.CRITICAL, "critical", False),
        ("fatal", logging.CRITICAL, "critical", False),
    )
    for entry in (
        (attribute, number, _method(method_name, exc_info), _nop),
        ("a" + attribute, number, _async_method(method_name, exc_info), _anop),
    )
)


def set_level(min_level: int) -> None:
    """Make every :class:`ObsBoundLogger`, those already handed out included, and the access
    line's emitter (``STATE.min_level``) log at *min_level* and above: the methods below it
    become a bare ``return None`` (decided here, once, rather than compared at every call)."""
    ObsBoundLogger.min_level = STATE.min_level = min_level
    for attribute, number, method, nop in _METHODS:
        setattr(ObsBoundLogger, attribute, method if number >= min_level else nop)


set_level(logging.INFO)
