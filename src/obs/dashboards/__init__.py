"""Grafana dashboards, Prometheus alert rules and provisioning files, built from :mod:`obs.metrics`.

Dashboards are code (Grafana's ``grafana-foundation-sdk`` builders) reading metric names from the
catalogue, so they cannot drift from what the middleware exports. ``obs dashboards generate``
writes them as deterministic files.
"""

from __future__ import annotations

from obs.dashboards import _compat  # noqa: F401  (first: imports the SDK without its warning)
from obs.dashboards.files import DASHBOARDS, render_files, stale_files, write_files
from obs.dashboards.options import DashboardOptions

__all__ = ["DASHBOARDS", "DashboardOptions", "render_files", "stale_files", "write_files"]
