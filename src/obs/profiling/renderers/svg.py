"""A self-contained SVG flame graph, drawn from the collapsed stacks.

Root at the bottom, callers below callees, children in alphabetical order (as flamegraph.pl draws
them), widths proportional to samples. Hovering a frame shows its samples and share in a tooltip.
Deterministic: the same result always gives the same bytes.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

if TYPE_CHECKING:
    from obs.profiling.result import ProfileResult

WIDTH = 1200
FRAME_HEIGHT = 17
FONT_SIZE = 12
CHAR_WIDTH = 7.0  # average advance of the monospace font at FONT_SIZE
PAD_TOP = 40
PAD_BOTTOM = 10
PAD_SIDE = 10
MIN_WIDTH = 0.1  # frames narrower than this (in pixels) are not drawn


@dataclass
class _Node:
    name: str
    count: int = 0
    children: dict[str, _Node] = field(default_factory=dict)

    def child(self, name: str) -> _Node:
        node = self.children.get(name)
        if node is None:
            node = self.children[name] = _Node(name)
        return node


def _build_tree(result: ProfileResult) -> _Node:
    root = _Node("all")
    several = len(result.pids) > 1
    for stack in result.stacks:
        root.count += stack.count
        node = root
        frames = list(stack.frames)
        if several and stack.pid is not None:
            frames.insert(0, f"process {stack.pid}: {result.processes.get(stack.pid, '')}".strip())
        for frame in frames:
            node = node.child(frame)
            node.count += stack.count
    return root


def _depth(node: _Node) -> int:
    return 1 + max((_depth(child) for child in node.children.values()), default=0)


def _colour(name: str) -> str:
    # A stable warm colour per function, so the same function looks the same in every graph.
    h = zlib.crc32(name.encode("utf-8", "backslashreplace"))
    return f"rgb({205 + h % 50},{(h >> 8) % 180},{(h >> 16) % 55})"


def render_svg(result: ProfileResult) -> str:
    """An SVG flame graph of *result*."""
    root = _build_tree(result)
    depth = _depth(root)
    height = PAD_TOP + depth * FRAME_HEIGHT + PAD_BOTTOM
    total = max(root.count, 1)
    scale = (WIDTH - 2 * PAD_SIDE) / total
    title = escape(f"{result.name}: {root.count} samples, pids {', '.join(map(str, result.pids))}")
    out = [
        '<?xml version="1.0" standalone="no"?>',
        f'<svg version="1.1" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}">',
        f"<style>text{{font-family:monospace;font-size:{FONT_SIZE}px}}"
        "rect{stroke:#fff;stroke-width:0.5}g:hover rect{stroke:#000}</style>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#f8f8f8"/>',
        f'<text x="{WIDTH // 2}" y="24" text-anchor="middle" font-size="16">{title}</text>',
    ]

    def draw(node: _Node, x: float, level: int) -> None:
        width = node.count * scale
        if width < MIN_WIDTH:
            return
        y = height - PAD_BOTTOM - (level + 1) * FRAME_HEIGHT
        share = 100.0 * node.count / total
        label = escape(node.name)
        out.append(
            f"<g><title>{label} ({node.count} samples, {share:.2f}%)</title>"
            f'<rect x="{x:.2f}" y="{y}" width="{width:.2f}" height="{FRAME_HEIGHT - 1}" '
            f'fill="{_colour(node.name)}"/>'
        )
        chars = int((width - 6) / CHAR_WIDTH)
        if chars >= 3:
            text = node.name if len(node.name) <= chars else node.name[: chars - 2] + ".."
            out.append(f'<text x="{x + 3:.2f}" y="{y + FRAME_HEIGHT - 5}">{escape(text)}</text>')
        out.append("</g>")
        child_x = x
        for name in sorted(node.children):
            child = node.children[name]
            draw(child, child_x, level + 1)
            child_x += child.count * scale

    draw(root, float(PAD_SIDE), 0)
    out.append("</svg>")
    return "\n".join(out) + "\n"
