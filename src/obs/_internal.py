"""How obs reports its own failures without ever failing the app it observes.

A failure inside obs (a log sink that cannot be written, a metric that raises) is counted in
``obs_internal_errors_total`` and printed to stderr at most once per interval per component, so a
full disk produces one line a minute instead of one per request.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

REPORT_INTERVAL_SECONDS = 60.0

_lock = threading.Lock()
_last_report: dict[str, float] = {}


def report_internal_error(
    component: str, exc: BaseException, registry: CollectorRegistry | None = None
) -> None:
    """Count *exc* against *component* and say so on stderr, rate-limited. Never raises."""
    try:
        from obs.metrics import get_metrics

        get_metrics(registry).internal_errors.labels(component).inc()
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
