"""Renderers turn a :class:`~obs.profiling.result.ProfileResult` into a file's text.

One small class per format, carrying its file suffix and how to view the file; one registry,
:data:`RENDERERS`, keyed by format name. Each format's text is made by its own module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from obs.exceptions import ProfilingError
from obs.profiling.renderers.collapsed import render_collapsed
from obs.profiling.renderers.speedscope import render_speedscope
from obs.profiling.renderers.svg import render_svg
from obs.profiling.renderers.text import render_summary

if TYPE_CHECKING:
    from obs.profiling.result import ProfileResult


@dataclass(frozen=True, slots=True)
class Renderer:
    """A profile file format: its name, file-name ending, how to view it, and how to make it."""

    name: str
    suffix: str
    view_hint: str
    make: Callable[[ProfileResult], str]

    def render(self, result: ProfileResult) -> str:
        return self.make(result)


SVG = Renderer(
    "svg",
    ".svg",
    "Open the .svg in a browser (hover for numbers); the .speedscope.json opens at "
    "https://www.speedscope.app",
    render_svg,
)
SPEEDSCOPE = Renderer(
    "speedscope",
    ".speedscope.json",
    "Open the file at https://www.speedscope.app",
    render_speedscope,
)
COLLAPSED = Renderer(
    "collapsed",
    ".collapsed.txt",
    "Collapsed stacks: feed them to flamegraph.pl or open at https://www.speedscope.app",
    render_collapsed,
)

#: Every format, by name.
RENDERERS: dict[str, Renderer] = {r.name: r for r in (SVG, SPEEDSCOPE, COLLAPSED)}
FORMATS: tuple[str, ...] = tuple(RENDERERS)
#: The file-name ending of each format (read from :data:`RENDERERS`).
SUFFIXES: dict[str, str] = {name: r.suffix for name, r in RENDERERS.items()}


def renderer(fmt: str) -> Renderer:
    """The renderer of format *fmt* (one of :data:`FORMATS`)."""
    try:
        return RENDERERS[fmt]
    except KeyError:
        raise ProfilingError(
            f"unknown profile format {fmt!r}; use one of: {', '.join(FORMATS)}."
        ) from None


def render(result: ProfileResult, fmt: str) -> str:
    """Render *result* in format *fmt* (one of :data:`FORMATS`)."""
    return renderer(fmt).render(result)


__all__ = [
    "COLLAPSED",
    "FORMATS",
    "RENDERERS",
    "SPEEDSCOPE",
    "SUFFIXES",
    "SVG",
    "Renderer",
    "render",
    "render_collapsed",
    "render_speedscope",
    "render_summary",
    "render_svg",
    "renderer",
]
