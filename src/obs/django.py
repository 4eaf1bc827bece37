"""Django integration; see :mod:`obs.integrations.django`.

MIDDLEWARE = ["obs.django.ObservabilityMiddleware", ...]
"""

from __future__ import annotations

from obs.integrations.django import ObservabilityMiddleware, metrics_view, route_template

__all__ = ["ObservabilityMiddleware", "metrics_view", "route_template"]
