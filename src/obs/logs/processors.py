"""The processors every obs log line passes: standard fields, exceptions, JSON rendering.

Processors are plain callables or small classes with ``__init__`` + ``__call__``, as in
structlog; :func:`obs.logs.pipeline.build_processors` chains them.
"""

from __future__ import annotations

import contextvars
import datetime
import time
from typing import Any

import orjson
import structlog
from prometheus_client import CollectorRegistry
from structlog.typing import EventDict, WrappedLogger

from obs.logs._compat import CONTEXT_VARS, KEY_PREFIX
from obs.metrics import get_metrics


class BoundKeys:
    """structlog's context variables as ``(key, variable)`` pairs, prefix already stripped.

    structlog only ever adds variables (one per key ever bound), so the pairs are rebuilt only
    when the count changes; copying the dict is one C call, safe against a concurrent bind.
    """

    size = -1
    pairs: tuple[tuple[str, contextvars.ContextVar[Any]], ...] = ()

    @classmethod
    def current(cls, variables: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
        if len(variables) != cls.size:
            snapshot = tuple(variables.items())
            cls.pairs = tuple(
                (name[len(KEY_PREFIX) :] if name.startswith(KEY_PREFIX) else name, var)
                for name, var in snapshot
            )
            cls.size = len(snapshot)
        return cls.pairs


def merge_contextvars(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Merge the keys bound with ``structlog.contextvars`` into *event_dict* (the event's own
    keys win), like structlog's processor of the same name.

    structlog's walks every context variable of the context; this one reads only structlog's
    own variables, which matters on a path that runs for every request.
    """
    if CONTEXT_VARS is None:  # pragma: no cover - a structlog that keeps them elsewhere
        return structlog.contextvars.merge_contextvars(logger, method_name, event_dict)
    for key, var in BoundKeys.current(CONTEXT_VARS):
        value = var.get()
        if value is not Ellipsis and key not in event_dict:
            event_dict[key] = value
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


class UtcTimestamp:
    """ISO-8601 UTC timestamps with microseconds, formatting the date part once per second."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self) -> str:
        return self.at(time.time_ns())

    def at(self, ns: int) -> str:
        """The timestamp of *ns* nanoseconds since the epoch."""
        second, ns = divmod(ns, 1_000_000_000)
        if second != self._second:
            moment = datetime.datetime.fromtimestamp(second, datetime.UTC)
            self._prefix = moment.strftime("%Y-%m-%dT%H:%M:%S.")
            self._second = second
        # Adding a million and dropping its "1" zero-pads: cheaper than a format spec.
        return self._prefix + str(ns // 1000 + 1_000_000)[1:] + "Z"


class AddStandardFields:
    """Add ``level``, ``logger``, ``service`` and ``timestamp``; count the event by level.

    One processor instead of five: every log line pays for these, so they are done in one call.
    The count goes to ``obs_log_events_total``, next to the RED metrics.
    """

    def __init__(self, service_name: str, registry: CollectorRegistry | None = None) -> None:
        self.service_name = service_name
        self._timestamp = UtcTimestamp()
        self._counter = get_metrics(registry).log_events
        self._children: dict[str, Any] = {}

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
        event_dict["timestamp"] = self._timestamp.at(_time_ns())
        child = self._children.get(level)
        if child is None:
            child = self._children.setdefault(level, self._counter.labels(level))
        child.inc()
        return event_dict


class RenderExceptions:
    """Turn ``exc_info``/``stack_info`` into structured data, at the cost of two key lookups
    for the lines that have neither."""

    def __init__(self) -> None:
        self._exceptions = structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        )
        self._stacks = structlog.processors.StackInfoRenderer()

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        if "stack_info" in event_dict:
            event_dict = self._stacks(logger, method_name, event_dict)
        if "exc_info" in event_dict:
            event_dict = self._exceptions(logger, method_name, event_dict)
        return event_dict


def json_default(obj: Any) -> Any:
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=repr)
    return repr(obj)


STR_KEYS_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_UTC_Z
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | STR_KEYS_OPTIONS


def render_json(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> bytes:
    """Render *event_dict* as one JSON line (bytes, newline included) with orjson."""
    try:
        return orjson.dumps(event_dict, default=json_default, option=_ORJSON_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        # Lone surrogates or integers beyond 64 bits: fall back to the slow, lenient encoder.
        import json

        return (json.dumps(event_dict, default=repr, ensure_ascii=True) + "\n").encode()
