"""``obs demo``: see logs, metrics and profiles of a real service, connected, in a minute."""

from __future__ import annotations

from obs.demo.runner import run_demo

__all__ = ["run_demo"]
