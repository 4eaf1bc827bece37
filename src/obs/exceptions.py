"""Exceptions raised by obs.

Every message says what went wrong *and* what to do about it; the CLI prints it as
``Error: <message>`` and exits non-zero.
"""

from __future__ import annotations


class ObsError(Exception):
    """Base class of every error obs raises on purpose."""

    exit_code: int = 1


class ConfigError(ObsError, ValueError):
    """A setting (argument or ``OBS_*`` environment variable) has an invalid value."""

    exit_code = 2


class ProfilingError(ObsError):
    """Profiling could not start or could not finish."""
