"""How obs reports its own failures without ever failing the app it observes.

A failure inside obs (a log sink that cannot be written, a metric that raises) is counted in
``obs_internal_errors_total`` and printed to stderr at most once per interval per component, so a
full disk produces one line a minute instead of one per request.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

REPORT_INTERVAL_SECONDS = 60.0

_lock = threading.Lock()
_last_report: dict[str, float] = {}
#: Counts a failure of a component against a registry; :mod:`obs.metrics` installs it when it
#: is imported (this module imports nothing of obs, so everything may report through it).
_count: Callable[[str, Any], None] | None = None


def count_with(counter: Callable[[str, Any], None]) -> None:
    """Install how failures are counted (``obs_internal_errors_total``)."""
    global _count
    _count = counter


def report_internal_error(component: str, exc: BaseException, registry: Any = None) -> None:
    """Count *exc* against *component* (in *registry*, default the global one) and say so on
    stderr, rate-limited. Never raises."""
    try:
        if _count is not None:
            _count(component, registry)
    except Exception:  # the registry itself may be what is broken
        pass
    now = time.monotonic()
    with _lock:
        last = _last_report.get(component)
        if last is not None and now - last < REPORT_INTERVAL_SECONDS:
            return
        _last_report[component] = now
    try:
        sys.stderr.write(
            f"obs: {component} failed ({type(exc).__name__}: {exc}); the request was still "
            f"served. Further {component} failures are counted in obs_internal_errors_total "
            f"and reported at most every {REPORT_INTERVAL_SECONDS:.0f}s.\n"
        )
        sys.stderr.flush()
    except Exception:
        pass


def reset_reports() -> None:
    """Forget when each component last reported (for tests)."""
    with _lock:
        _last_report.clear()
