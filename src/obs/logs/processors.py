"""The processors every obs log line passes: standard fields, exceptions, JSON rendering.

Processors are plain callables or small classes with ``__init__`` + ``__call__``, as in
structlog; :func:`obs.logs.pipeline.build_processors` chains them.
"""

from __future__ import annotations

import contextvars
import datetime
import time
from collections.abc import Callable
from io import StringIO
from typing import Any

import orjson
import structlog
from prometheus_client import CollectorRegistry
from structlog.typing import EventDict, WrappedLogger

from obs.escaping import escape_control
from obs.logs._compat import CONTEXT_VARS, KEY_PREFIX
from obs.logs.context import REQUEST
from obs.logs.redaction import safe_repr
from obs.metrics import ROUTE, get_metrics
from obs.selfreport import report_internal_error


class BoundKeys:
    """structlog's context variables as ``(key, variable)`` pairs, prefix already stripped; the
    one instance is :data:`BOUND_KEYS`.

    structlog only ever adds variables (one per key ever bound), so the pairs are rebuilt only
    when the count changes; copying the dict is one C call, safe against a concurrent bind.
    An instance with slots rather than class attributes: Python 3.11 specialises attribute
    reads on it (bench/instructions.py: about 300 instructions per access line).
    """

    __slots__ = ("pairs", "size")

    def __init__(self) -> None:
        self.size = -1
        self.pairs: tuple[tuple[str, contextvars.ContextVar[Any]], ...] = ()

    def current(self, variables: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
        if len(variables) != self.size:
            snapshot = tuple(variables.items())
            self.pairs = tuple(
                (name[len(KEY_PREFIX) :] if name.startswith(KEY_PREFIX) else name, var)
                for name, var in snapshot
            )
            self.size = len(snapshot)
        return self.pairs


#: structlog's context variables, as pairs (see :class:`BoundKeys`).
BOUND_KEYS = BoundKeys()


def merge_contextvars(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Merge the keys bound with ``structlog.contextvars`` into *event_dict* (the event's own
    keys win), like structlog's processor of the same name.

    structlog's walks every context variable of the context; this one reads only structlog's
    own variables, which matters on a path that runs for every request.
    """
    if CONTEXT_VARS is None:  # pragma: no cover - a structlog that keeps them elsewhere
        return structlog.contextvars.merge_contextvars(logger, method_name, event_dict)
    for key, var in BOUND_KEYS.current(CONTEXT_VARS):
        value = var.get()
        if value is not Ellipsis and key not in event_dict:
            event_dict[key] = value
    return event_dict


def add_http_route(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Add ``http_route`` (the route label of the request being handled) to a line written
    while a request observed by obs runs, once its framework has routed it.

    The middleware binds the request id before the framework routes the request, so the route
    is asked for when the line is written; the line's own ``http_route`` wins. With it, lines
    filtered by route (the logs dashboard's ``http_route`` box) include the app's own lines of
    those requests, not only their access lines. Outside a request it costs one lookup.
    """
    if ROUTE not in event_dict:
        request = REQUEST.get()
        if request is not None:
            route = request.current_route()
            if route is not None:
                event_dict[ROUTE] = route
    return event_dict


_time_ns = time.time_ns
_LEVEL_OF_METHOD = {
    "debug": "debug",
    "info": "info",
    "msg": "info",
    "warning": "warning",
    "warn": "warning",
    "error": "error",
    "exception": "error",
    "critical": "critical",
    "fatal": "critical",
}


class AddStandardFields:
    """Add ``level``, ``logger``, ``service`` and ``timestamp``; count the event by level.

    One processor instead of five: every log line pays for these, so they are done in one call.
    The count goes to ``obs_log_events_total``, next to the RED metrics. Timestamps are ISO-8601
    UTC with microseconds; the date part is formatted once per second.
    """

    def __init__(self, service_name: str, registry: CollectorRegistry | None = None) -> None:
        self.service_name = service_name
        self._second = -1  # the second whose date part is _prefix
        self._prefix = ""
        self._counter = get_metrics(registry).log_events
        #: Level -> what counts its lines (see :meth:`_count_of`).
        self._children: dict[str, Callable[[], object]] = {}

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        return self.add(event_dict, method_name, getattr(logger, "name", None))

    def add(self, event_dict: EventDict, method_name: str, logger_name: str | None) -> EventDict:
        """The processor's work, given the logger's name."""
        # The level comes from the method called, always: a field named ``level``
        # (``log.info("done", level=7)``) is kept as ``level_field``, so it can neither change
        # the line's level nor add a series to the counter.
        level = _LEVEL_OF_METHOD.get(method_name, method_name)
        given = event_dict.get("level")
        if given is not None and given != level:
            event_dict["level_field"] = given
        event_dict["level"] = level
        if logger_name and "logger" not in event_dict:
            event_dict["logger"] = logger_name
        if "service" not in event_dict:
            event_dict["service"] = self.service_name
        # The timestamp formatted here, not by a helper: a call fewer per line
        # (bench/instructions.py: about 450 instructions).
        second, ns = divmod(_time_ns(), 1_000_000_000)
        if second != self._second:
            self._start_second(second)
        # Adding a million and dropping its "1" zero-pads: cheaper than a format spec.
        event_dict["timestamp"] = self._prefix + str(ns // 1000 + 1_000_000)[1:] + "Z"
        try:
            step = self._children.get(level)
            if step is None:
                step = self._count_of(level)
            step()
        except Exception as exc:  # a full multiprocess directory: the line still goes out
            report_internal_error("log event count", exc)
        return event_dict

    def _count_of(self, level: str) -> Callable[[], object]:
        """What counts a line of *level*: the counter child's C step where it has one."""
        child = self._counter.labels(level)
        unit_step = getattr(child, "unit_step", None)
        step: Callable[[], object] = child.inc if unit_step is None else unit_step()
        return self._children.setdefault(level, step)

    def _start_second(self, second: int) -> None:
        moment = datetime.datetime.fromtimestamp(second, datetime.UTC)
        self._prefix = moment.strftime("%Y-%m-%dT%H:%M:%S.")
        self._second = second


class RenderExceptions:
    """Turn ``exc_info``/``stack_info`` into structured data, at the cost of two key lookups
    for the lines that have neither."""

    def __init__(self) -> None:
        self._exceptions = structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        )
        self._stacks = structlog.processors.StackInfoRenderer()

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        # Runs before redaction, which then scrubs the exception messages it rendered.
        try:
            if "stack_info" in event_dict:
                event_dict = self._stacks(logger, method_name, event_dict)
            if "exc_info" in event_dict:
                event_dict = self._exceptions(logger, method_name, event_dict)
        except Exception as exc:  # an exception whose str() raises, say
            report_internal_error("logging", exc)
            event_dict["exception"] = safe_repr(event_dict.pop("exc_info", None))
            event_dict.pop("stack_info", None)
        return event_dict


class ExceptionText:
    """For the console: ``exc_info`` turned into plain traceback text under ``exception``,
    before redaction, so the exception's message is scrubbed like every other string (structlog's
    console renderer would format it after redaction, with whatever the message holds)."""

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        exc_info = event_dict.pop("exc_info", None)
        if not exc_info:
            return event_dict
        try:
            if exc_info is True or not isinstance(exc_info, BaseException | tuple):
                import sys

                exc_info = sys.exc_info()
            if isinstance(exc_info, BaseException):
                exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
            if exc_info[0] is not None:
                sio = StringIO()
                structlog.dev.plain_traceback(sio, exc_info)
                event_dict["exception"] = sio.getvalue().lstrip("\n")
        except Exception as exc:
            report_internal_error("logging", exc)
            event_dict["exception"] = safe_repr(exc_info)
        return event_dict


class ConsoleLine:
    """structlog's console renderer, made safe for a terminal and for any value.

    Control characters in keys and string values are escaped (the exception text keeps its
    line breaks); anything the renderer still cannot render is written as ``key=repr`` pairs.
    """

    def __init__(self, colors: bool) -> None:
        self._renderer = structlog.dev.ConsoleRenderer(colors=colors)

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> str:
        try:
            clean: dict[str, Any] = {}
            for key, value in event_dict.items():
                name = escape_control(key if type(key) is str else safe_repr(key))
                if isinstance(value, str):
                    value = escape_control(value, keep_newlines=name in ("exception", "stack"))
                elif not isinstance(value, int | float | type(None)):
                    value = escape_control(safe_repr(value))
                clean[name] = value
            return str(self._renderer(logger, method_name, clean))
        except Exception as exc:
            report_internal_error("logging", exc)
            return " ".join(
                f"{escape_control(safe_repr(k))}={escape_control(safe_repr(v))}"
                for k, v in list(event_dict.items())
            )


def json_default(obj: Any) -> Any:
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=safe_repr)
    return safe_repr(obj)


STR_KEYS_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_UTC_Z
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | STR_KEYS_OPTIONS


def render_json(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> bytes:
    """Render *event_dict* as one JSON line (bytes, newline included) with orjson."""
    try:
        return orjson.dumps(event_dict, default=json_default, option=_ORJSON_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        pass
    import json

    try:
        # Lone surrogates or integers beyond 64 bits: the slow, lenient encoder.
        return (json.dumps(event_dict, default=safe_repr, ensure_ascii=True) + "\n").encode()
    except Exception as exc:  # keys it cannot write, or a chain without redaction
        report_internal_error("logging", exc)
    line = {
        "event": safe_repr(event_dict.get("event")),
        "level": str(event_dict.get("level", method_name)),
        "obs_error": "the log event could not be rendered as JSON",
    }
    return (json.dumps(line, ensure_ascii=True) + "\n").encode()
