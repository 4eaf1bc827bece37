"""Renderers turn a :class:`~obs.profiling.result.ProfileResult` into a file's text.

One small module per format; :data:`FORMATS` lists them and :data:`SUFFIXES` gives the file name
ending each one is written with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from obs.exceptions import ProfilingError
from obs.profiling.renderers.collapsed import render_collapsed
from obs.profiling.renderers.speedscope import render_speedscope
from obs.profiling.renderers.svg import render_svg
from obs.profiling.renderers.text import render_summary

if TYPE_CHECKING:
    from obs.profiling.result import ProfileResult

RENDERERS: dict[str, Callable[[ProfileResult], str]] = {
    "svg": render_svg,
    "speedscope": render_speedscope,
    "collapsed": render_collapsed,
}
FORMATS: tuple[str, ...] = tuple(RENDERERS)
SUFFIXES: dict[str, str] = {
    "svg": ".svg",
    "speedscope": ".speedscope.json",
    "collapsed": ".collapsed.txt",
}


def render(result: ProfileResult, fmt: str) -> str:
    """Render *result* in format *fmt* (one of :data:`FORMATS`)."""
    try:
        renderer = RENDERERS[fmt]
    except KeyError:
        raise ProfilingError(
            f"unknown profile format {fmt!r}; use one of: {', '.join(FORMATS)}."
        ) from None
    return renderer(result)


__all__ = [
    "FORMATS",
    "RENDERERS",
    "SUFFIXES",
    "render",
    "render_collapsed",
    "render_speedscope",
    "render_summary",
    "render_svg",
]
