"""Log levels: the five standard names every line's ``level`` is one of.

A level outside them (a stdlib custom level such as 25 or 5, ``log.log(35, ...)``) is written
as the standard name at or below it, so ``level`` and ``obs_log_events_total{level}`` keep five
values whatever the app defines.
"""

from __future__ import annotations

import logging
from typing import Any

#: The standard level names by number.
NAME_OF_NUMBER: dict[int, str] = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}
#: Level numbers by name, the aliases ``warn`` and ``fatal`` (and structlog's ``msg``,
#: ``exception``) included.
NUMBER_OF_NAME: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "msg": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}


def standard_number(level: Any) -> int:
    """The standard level number at or below *level* (a number, or a level name); below
    ``DEBUG`` is ``DEBUG``, and what is neither a number nor a known name is ``INFO``."""
    if isinstance(level, str):
        return NUMBER_OF_NAME.get(level.lower(), logging.INFO)
    try:
        for number in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO):
            if level >= number:
                return number
    except Exception:  # None, an object: not a level
        return logging.INFO
    return logging.DEBUG


def standard_name(level: Any) -> str:
    """The standard level name at or below *level* (see :func:`standard_number`)."""
    name = NAME_OF_NUMBER.get(level) if type(level) is int else None
    return name or NAME_OF_NUMBER[standard_number(level)]
