"""One logging pipeline for the whole process.

:func:`configure_logging` sets up structlog and the standard library together, so the app's
structlog loggers, plain :mod:`logging` loggers and the servers' own loggers (uvicorn, gunicorn)
all come out as the same JSON lines (or the same coloured console lines on a terminal).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from typing import IO, Any

import structlog
from prometheus_client import CollectorRegistry
from structlog.typing import Processor

from obs.config import Settings
from obs.exceptions import ConfigError
from obs.logs import hooks
from obs.logs.bound import ObsBoundLogger, set_level
from obs.logs.fast import JsonLine
from obs.logs.levels import NUMBER_OF_NAME, standard_name
from obs.logs.processors import (
    AddStandardFields,
    ConsoleLine,
    ExceptionText,
    RenderExceptions,
    add_http_route,
    merge_contextvars,
    render_json,
)
from obs.logs.redaction import RedactSecrets
from obs.logs.sink import LineSink
from obs.logs.state import STATE
from obs.metrics import service_configured
from obs.selfreport import report_internal_error

#: Loggers that servers set up with handlers of their own; obs routes them through its pipeline.
SERVER_LOGGERS: tuple[str, ...] = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "gunicorn",
    "gunicorn.error",
    "gunicorn.access",
    "hypercorn.error",
    "hypercorn.access",
)
#: The servers' own access loggers: off by default, since obs writes the one access line (with
#: the query redacted); ``configure_logging(server_access_logs=True)`` keeps them.
SERVER_ACCESS_LOGGERS: frozenset[str] = frozenset(
    {"uvicorn.access", "gunicorn.access", "hypercorn.access"}
)
#: Attribute obs sets on an exception whose traceback its access line carried; the server's own
#: "Exception in ASGI application" line then names the request instead of repeating it.
REPORTED_ATTR = "__obs_request_id__"
#: Where an exception that left a request carries that request's id when its traceback is not
#: in the request's access line (set by ``RequestObservation.note_on``): the server's own line
#: about it keeps the traceback and names the request.
ESCAPED_FROM_ATTR = "_obs_request_id"

#: Fields obs sets on every line: an ``extra=`` key of one of these names is kept as
#: ``<name>_field`` (as structlog's ``level=`` is), so it can neither replace the record's message
#: nor make a line claim another logger or service.
_STANDARD_FIELDS = frozenset({"event", "level", "logger", "service", "timestamp"})

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured duplicate of the message
}


def mark_reported(exc: BaseException, request_id: str | None) -> None:
    """Note that the access line of request *request_id* carries *exc*'s traceback, so other
    lines about the same exception (the server's, Django's) name the request instead."""
    try:
        setattr(exc, REPORTED_ATTR, request_id or "")
    except Exception:  # an exception type without attributes: its traceback shows twice
        pass


class SinkLogger:
    """The logger structlog wraps: it hands the rendered line to the current sink."""

    def __init__(self, name: str) -> None:
        self.name = name

    def msg(self, line: str | bytes) -> None:
        STATE.sink.write(line)

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


class SinkLoggerFactory:
    """Names a logger after its first argument or after the calling module."""

    def __call__(self, *args: Any) -> SinkLogger:
        if args and isinstance(args[0], str):
            return SinkLogger(args[0])
        return SinkLogger(_caller_module())


def _caller_module() -> str:
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not (name.startswith("structlog") or name == __name__):
            return str(name) or "app"
        frame = frame.f_back  # type: ignore[assignment]
    return "app"


# -- processors ---------------------------------------------------------------------------------


def build_processors(
    settings: Settings, *, json: bool, registry: CollectorRegistry | None = None
) -> tuple[list[Processor], JsonLine | None]:
    """The processor chain shared by structlog loggers and standard-library records, and, for
    the JSON format, the same chain fused into one call for obs's access line."""
    standard = AddStandardFields(settings.service_name, registry)
    redact = RedactSecrets.from_settings(settings)
    # Exceptions are rendered before redaction, so that their messages are scrubbed too.
    if not json:
        console = ConsoleLine(colors=_wants_colour(STATE.sink.stream))
        return [merge_contextvars, add_http_route, standard, ExceptionText(), redact, console], None
    exceptions = RenderExceptions()
    chain: list[Processor] = [
        merge_contextvars, add_http_route, standard, exceptions, redact, render_json
    ]  # fmt: skip
    return chain, JsonLine(standard, redact, exceptions)


def _wants_colour(stream: IO[str]) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def resolve_format(log_format: str, stream: IO[str]) -> str:
    """``auto`` means console on a terminal and JSON everywhere else."""
    if log_format != "auto":
        return log_format
    isatty = getattr(stream, "isatty", None)
    return "console" if isatty and isatty() else "json"


# -- standard library bridge --------------------------------------------------------------------


class _RecordLogger:
    """Stands in for the wrapped logger when a standard-library record runs the chain."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class StructlogHandler(logging.Handler):
    """Runs standard-library records through the same processors as structlog events."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event_dict: dict[str, Any] = {"event": record.getMessage()}
            for key, value in record.__dict__.items():
                if key not in _RECORD_ATTRS and not key.startswith("_"):
                    if key in _STANDARD_FIELDS:  # extra={"event": …}, {"logger": "obs.access"}
                        key += "_field"
                    event_dict[key] = value
            if record.exc_info:
                reported = getattr(record.exc_info[1], REPORTED_ATTR, None)
                if reported is None:
                    event_dict["exc_info"] = record.exc_info
                    escaped_from = getattr(record.exc_info[1], ESCAPED_FROM_ATTR, None)
                    if isinstance(escaped_from, str):
                        event_dict.setdefault("request_id", escaped_from)
                else:  # the access line of that request has the traceback already
                    event_dict.setdefault("request_id", reported)
                    event_dict["error_type"] = type(record.exc_info[1]).__qualname__
            if record.stack_info:
                event_dict["stack"] = record.stack_info
            # The level's standard name, whatever the record's levelname: a custom level
            # (25, 5) must not make a level of its own, nor a series of obs_log_events_total.
            method = standard_name(record.levelno)
            rendered: Any = event_dict
            logger = _RecordLogger(record.name)
            for processor in STATE.processors:
                rendered = processor(logger, method, rendered)
            STATE.sink.write(rendered)
        except structlog.DropEvent:
            pass
        except Exception as exc:
            report_internal_error("logging", exc)


class ServerLoggerTakeover(logging.Filter):
    """Keeps a server's logger going through obs: drops the handlers the server added (now or
    later: hypercorn adds its own when it starts serving, after the app was imported) and lets
    the record propagate to obs's handler; drops every record of a switched-off access logger.
    """

    def __init__(self, logger: logging.Logger, enabled: bool) -> None:
        super().__init__()
        self.logger = logger
        self.enabled = enabled

    def filter(self, record: logging.LogRecord) -> bool:
        logger = self.logger
        if logger.handlers:
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True
        return self.enabled


def _writes_to_the_console(handler: logging.Handler, target: IO[str]) -> bool:
    """Whether *handler* writes where obs's lines go (stdout, stderr, obs's stream): a
    ``StreamHandler`` to one of them (dictConfig's ``console``), or Flask's default handler."""
    flask_logging = sys.modules.get("flask.logging")
    if flask_logging is not None and handler is getattr(flask_logging, "default_handler", None):
        return True
    if not isinstance(handler, logging.StreamHandler) or isinstance(handler, logging.FileHandler):
        return False
    stream = handler.stream
    consoles = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__, target)
    if any(stream is console for console in consoles):
        return True
    try:
        return bool(stream.fileno() in (1, 2))
    except Exception:  # no descriptor (StringIO), or closed
        return False


def _take_over_console_handlers(target: IO[str]) -> None:
    """Remove the handlers other loggers have that write to the console (set up by
    dictConfig, Flask, ``basicConfig``) before obs: their lines would come out twice, once in
    their format. The logger then propagates, so its lines reach obs's handler instead.
    Handlers to other destinations (files, sockets, mail) stay. The servers' loggers are left
    to :class:`ServerLoggerTakeover`: they can share one handler list (gunicorn's uvicorn worker
    hands ``gunicorn.error``'s list to ``uvicorn.error``), so emptying one here would leave the
    other without handlers and without propagation, which reads as switched off."""
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger) or name in SERVER_LOGGERS:
            continue  # a placeholder for a dotted parent, or a server's logger
        for handler in list(logger.handlers):
            if _writes_to_the_console(handler, target):
                logger.removeHandler(handler)
                logger.propagate = True


def _install_stdlib(level: int, server_access_logs: bool, target: IO[str]) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    _take_over_console_handlers(target)
    root.addHandler(StructlogHandler())
    root.setLevel(level)
    logging.captureWarnings(True)  # warnings.warn() lines go through the pipeline too
    # Decided for every server logger before any is changed: loggers can share one handler
    # list (gunicorn's uvicorn worker gives uvicorn.error gunicorn.error's), and emptying one
    # would make the other look switched off.
    taken_over = []
    for name in SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        for old in [f for f in server_logger.filters if isinstance(f, ServerLoggerTakeover)]:
            server_logger.removeFilter(old)
        enabled = server_access_logs or name not in SERVER_ACCESS_LOGGERS
        if enabled and not server_logger.handlers and not server_logger.propagate:
            # No handlers and no propagation is how servers switch a logger off
            # (uvicorn --no-access-log): leave that choice alone.
            continue
        taken_over.append((server_logger, enabled))
    for server_logger, enabled in taken_over:
        server_logger.addFilter(ServerLoggerTakeover(server_logger, enabled))
        # Checked before a record is even made: a switched-off access logger costs nothing.
        server_logger.disabled = not enabled
        for handler in list(server_logger.handlers):
            server_logger.removeHandler(handler)
        server_logger.propagate = True


def _line_buffer(stream: IO[str]) -> None:
    """Make stdout/stderr line-buffered, so print() output never sits half-written between
    log lines, and log lines need no flush of their own."""
    if stream in (sys.stdout, sys.stderr) and not getattr(stream, "line_buffering", True):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(line_buffering=True)
            except (ValueError, OSError):  # detached or closed: keep flushing per line
                pass


def _check_arguments(
    level: str | int | None,
    service_name: str | None,
    redact_keys: Iterable[str] | None,
    stream: IO[str] | None,
) -> str | None:
    """Refuse, with one line, what :func:`configure_logging` could only fail on later; returns
    the level as a name (a stdlib number, ``logging.DEBUG``, is its standard level's name)."""
    if isinstance(level, int) and not isinstance(level, bool):
        level = standard_name(level)
    elif level is not None and not isinstance(level, str):
        raise ConfigError(
            f"level={level!r} is invalid; use a name (debug, info, warning, error, critical) "
            "or a logging level number (logging.DEBUG)."
        )
    if service_name is not None and not (isinstance(service_name, str) and service_name.strip()):
        raise ConfigError(f"service_name={service_name!r} is invalid; give the service's name.")
    if isinstance(redact_keys, str | bytes):
        raise ConfigError(
            f"redact_keys={redact_keys!r} is a string, which would be read one character at a "
            f"time; pass a list of keys: redact_keys=[{redact_keys!r}]."
        )
    if stream is not None and not callable(getattr(stream, "write", None)):
        raise ConfigError(
            f"stream={stream!r} cannot be written to; pass an open text stream (sys.stdout, "
            "sys.stderr, a file opened for writing)."
        )
    return level


def configure_logging(
    *,
    service_name: str | None = None,
    level: str | int | None = None,
    log_format: str | None = None,
    redact_keys: Iterable[str] | None = None,
    stream: IO[str] | None = None,
    registry: CollectorRegistry | None = None,
    settings: Settings | None = None,
    server_access_logs: bool = False,
) -> Settings:
    """Configure structlog and the standard library so every log line has one format.

    Arguments override ``OBS_*`` environment variables (``OBS_SERVICE_NAME``, ``OBS_LOG_LEVEL``,
    ``OBS_LOG_FORMAT``, ``OBS_REDACT_KEYS``). The servers' own access loggers (uvicorn,
    gunicorn, hypercorn) are switched off, since obs writes one access line per request;
    *server_access_logs* keeps them. Python warnings are logged, and so are uncaught exceptions
    (``sys.excepthook``, ``threading.excepthook``; KeyboardInterrupt excepted). Safe to call more than once:
    the last call wins and no handler or line is duplicated. Returns the settings in force.
    """
    level = _check_arguments(level, service_name, redact_keys, stream)
    if settings is None:
        settings = Settings.from_env(
            service_name=service_name,
            log_level=level,
            log_format=log_format,
            redact_keys=None if redact_keys is None else tuple(redact_keys),
        )
    target = sys.stdout if stream is None else stream
    _line_buffer(target)
    with STATE.lock:
        STATE.sink = LineSink(target)
        fmt = resolve_format(settings.log_format, target)
        # Mutated in place: loggers cached before a reconfiguration see the new chain.
        chain, json_line = build_processors(settings, json=fmt == "json", registry=registry)
        STATE.processors[:] = chain
        STATE.json_line = json_line
        numeric_level = NUMBER_OF_NAME[settings.log_level]
        # One wrapper class whose methods follow the level: loggers cached by an earlier call
        # follow this one's level (make_filtering_bound_logger freezes it into its class);
        # the access line's emitter reads the same level from STATE.
        set_level(numeric_level)
        structlog.configure(
            processors=STATE.processors,
            wrapper_class=ObsBoundLogger,
            logger_factory=SinkLoggerFactory(),
            context_class=dict,
            cache_logger_on_first_use=True,
        )
        STATE.configured = True
        _install_stdlib(numeric_level, server_access_logs, target)
        hooks.install()  # uncaught exceptions as log lines, not plain tracebacks
    # obs_build_info says the service of the log lines (of the middlewares built before too).
    service_configured(settings.service_name)
    return settings


def get_logger(name: str | None = None, **initial_values: Any) -> Any:
    """Return a structlog logger named *name* (default: the calling module)."""
    return structlog.get_logger(name or _caller_module(), **initial_values)
