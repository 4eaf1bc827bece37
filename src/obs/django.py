"""Django integration; see :mod:`obs.integrations.django`.

MIDDLEWARE = ["obs.django.ObservabilityMiddleware", ...]
"""

from __future__ import annotations

from obs.integrations.django import (
    LANGUAGE_PREFIX,
    ObservabilityMiddleware,
    make_metrics_view,
    metrics_view,
    regex_template,
    route_template,
)

__all__ = [
    "LANGUAGE_PREFIX",
    "ObservabilityMiddleware",
    "make_metrics_view",
    "metrics_view",
    "regex_template",
    "route_template",
]
