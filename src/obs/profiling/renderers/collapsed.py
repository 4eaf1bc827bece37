"""Collapsed stacks, one ``frame;frame;frame count`` line per stack (flamegraph.pl, py-spy raw)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from obs.profiling.result import ProfileResult


def render_collapsed(result: ProfileResult) -> str:
    """Sorted collapsed stacks; a sample of a known process starts with its process frame."""
    lines = []
    for stack in result.stacks:
        frames = list(stack.frames)
        if stack.pid is not None and stack.pid in result.processes:
            frames.insert(0, f'process {stack.pid}:"{result.processes[stack.pid]}"')
        lines.append(f"{';'.join(frames)} {stack.count}")
    lines.sort()
    return "".join(line + "\n" for line in lines)
