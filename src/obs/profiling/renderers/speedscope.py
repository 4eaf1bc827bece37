"""The speedscope file format (https://www.speedscope.app/file-format-schema.json).

One sampled profile per process, weights in seconds (samples divided by the sampling rate), so
speedscope shows time rather than sample counts.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from obs.profiling.frames import Frame

if TYPE_CHECKING:
    from obs.profiling.result import ProfileResult, StackSample

SCHEMA_URL = "https://www.speedscope.app/file-format-schema.json"


def render_speedscope(result: ProfileResult) -> str:
    """A speedscope JSON document for *result* (deterministic: sorted keys, 2-space indent)."""
    frame_index: dict[str, int] = {}
    frames: list[dict[str, Any]] = []

    def index_of(text: str) -> int:
        index = frame_index.get(text)
        if index is None:
            frame = Frame.parse(text)
            entry: dict[str, Any] = {"name": frame.name}
            if frame.file is not None:
                entry["file"] = frame.file
                entry["line"] = frame.line
            index = frame_index[text] = len(frames)
            frames.append(entry)
        return index

    by_pid: dict[int | None, list[StackSample]] = {}
    for stack in sorted(result.stacks, key=lambda s: (s.pid or 0, s.frames)):
        by_pid.setdefault(stack.pid, []).append(stack)

    rate = result.rate or 1
    profiles = []
    for pid, stacks in by_pid.items():
        weights = [stack.count / rate for stack in stacks]
        label = result.name if pid is None else f"pid {pid}"
        if pid is not None and result.processes.get(pid):
            label += f": {result.processes[pid]}"
        profiles.append(
            {
                "type": "sampled",
                "name": label,
                "unit": "seconds",
                "startValue": 0,
                "endValue": sum(weights),
                "samples": [[index_of(f) for f in stack.frames] for stack in stacks],
                "weights": weights,
            }
        )
    document = {
        "$schema": SCHEMA_URL,
        "name": result.name,
        "exporter": "obs",
        "activeProfileIndex": 0,
        "shared": {"frames": frames},
        "profiles": profiles,
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
