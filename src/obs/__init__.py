"""obs: structured logs, RED metrics, profiles and dashboards for Python web services, connected.

Importing obs configures nothing; call :func:`configure_logging` and add a middleware.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from obs.config import Settings
from obs.exceptions import ConfigError, ObsError, ProfilingError
from obs.logs import configure_logging, get_logger

if TYPE_CHECKING:
    from obs.profiling import ProfileResult, profile, profiled

__version__ = "0.1.0"

# Loaded on first use, so ``import obs`` stays cheap for apps that never profile.
_LAZY = {"ProfileResult", "profile", "profiled"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import obs.profiling

        return getattr(obs.profiling, name)
    raise AttributeError(f"module 'obs' has no attribute {name!r}")


__all__ = [
    "ConfigError",
    "ObsError",
    "ProfileResult",
    "ProfilingError",
    "Settings",
    "__version__",
    "configure_logging",
    "get_logger",
    "profile",
    "profiled",
]
