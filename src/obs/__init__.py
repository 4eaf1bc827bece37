"""obs: structured logs, RED metrics, profiles and dashboards for Python web services, connected.

Importing obs configures nothing; call :func:`configure_logging` and add a middleware.
"""

from __future__ import annotations

from obs.config import Settings
from obs.exceptions import ConfigError, ObsError, ProfilingError
from obs.logs import configure_logging, get_logger

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "ObsError",
    "ProfilingError",
    "Settings",
    "__version__",
    "configure_logging",
    "get_logger",
]
