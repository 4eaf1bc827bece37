"""The result of a sampling profile: collapsed stacks plus what was profiled, and how.

A :class:`ProfileResult` is what ``obs profile`` records and what every renderer reads. It can be
built from py-spy's collapsed ("raw") output, saved as JSON and loaded again, so a profile taken on
a server can be rendered later on a laptop.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from obs.exceptions import ProfilingError
from obs.profiling.frames import Frame

# py-spy marks each process of a ``--subprocesses`` profile with a root frame of this form.
_PROCESS_FRAME = re.compile(r'^process (?P<pid>\d+):"(?P<cmdline>.*)"$')

FORMAT_VERSION = 1

__all__ = ["FORMAT_VERSION", "Frame", "FunctionStat", "ProfileResult", "StackSample"]


@dataclass(frozen=True, slots=True)
class StackSample:
    """A call stack, root first, seen *count* times in process *pid*."""

    frames: tuple[str, ...]
    count: int
    pid: int | None = None


@dataclass(frozen=True, slots=True)
class FunctionStat:
    """A function's share of the samples: *own* where it was the leaf, *total* anywhere."""

    frame: str
    own: int
    total: int


@dataclass(frozen=True)
class ProfileResult:
    """Samples of a process (and its subprocesses) with the metadata needed to read them.

    ``stacks`` holds the collapsed stacks; ``processes`` maps every sampled pid to its command
    line; ``duration`` is in seconds and ``rate`` in samples per second.
    """

    stacks: tuple[StackSample, ...]
    pid: int | None = None
    duration: float = 0.0
    rate: int = 100
    command_line: str = ""
    processes: Mapping[int, str] = field(default_factory=dict)
    name: str = "profile"

    @property
    def samples(self) -> int:
        """The number of stack samples recorded."""
        return sum(stack.count for stack in self.stacks)

    @property
    def pids(self) -> tuple[int, ...]:
        """The pids that were sampled at least once, in ascending order."""
        return tuple(sorted({s.pid for s in self.stacks if s.pid is not None}))

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def from_collapsed(cls, text: str, **metadata: Any) -> ProfileResult:
        """Parse collapsed stacks (``frame;frame;frame count`` per line), py-spy's raw format.

        Identical stacks are merged and the stacks are sorted, so equal profiles compare equal.

        Leading ``process <pid>:"<cmdline>"`` frames are taken off the stack and become the
        sample's pid; the innermost one is the process that was sampled.
        """
        counts: Counter[tuple[int | None, tuple[str, ...]]] = Counter()
        processes: dict[int, str] = dict(metadata.pop("processes", {}))
        default_pid = metadata.get("pid")
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.rstrip()
            if not line.strip():
                continue
            # A sample without Python frames (py-spy --nonblocking can catch one) has no stack.
            stack, sep, count_text = line.rpartition(" ")
            if not sep or not count_text.isdigit():
                raise ProfilingError(
                    f"line {number} of the collapsed stacks is not 'frame;frame count': {raw!r}; "
                    "pass py-spy's raw output (py-spy record --format raw)."
                )
            frames = stack.split(";") if stack else []
            pid = default_pid
            while frames and (match := _PROCESS_FRAME.match(frames[0])):
                pid = int(match["pid"])
                processes.setdefault(pid, match["cmdline"])
                frames.pop(0)
            counts[(pid, tuple(frames))] += int(count_text)
        ordered = sorted(counts.items(), key=lambda item: (item[0][0] or 0, item[0][1]))
        stacks = tuple(StackSample(frames, count, pid) for (pid, frames), count in ordered)
        return cls(stacks=stacks, processes=processes, **metadata)

    @classmethod
    def from_processes(
        cls, stacks: Mapping[int, str], processes: Mapping[int, str], **metadata: Any
    ) -> ProfileResult:
        """Merge collapsed stacks recorded one process at a time (*stacks* maps a pid to its
        py-spy raw output; *processes* a pid to its command line) into one result."""
        merged = [
            sample
            for pid, text in stacks.items()
            for sample in cls.from_collapsed(text, pid=pid).stacks
        ]
        merged.sort(key=lambda s: (s.pid or 0, s.frames))
        return cls(stacks=tuple(merged), processes=dict(processes), **metadata)

    # -- reading ----------------------------------------------------------------------------

    def function_stats(self) -> list[FunctionStat]:
        """Own and total samples per function, most own time first."""
        own: Counter[str] = Counter()
        total: Counter[str] = Counter()
        for stack in self.stacks:
            if not stack.frames:
                continue
            own[stack.frames[-1]] += stack.count
            for frame in set(stack.frames):  # recursion counts once per sample
                total[frame] += stack.count
        stats = [FunctionStat(frame, own[frame], total[frame]) for frame in total]
        stats.sort(key=lambda s: (-s.own, -s.total, s.frame))
        return stats

    def top_own(self, limit: int = 10) -> list[FunctionStat]:
        """The functions with the most samples of their own (not in callees)."""
        return [s for s in self.function_stats() if s.own][:limit]

    def top_total(self, limit: int = 10) -> list[FunctionStat]:
        """The functions on the stack in the most samples (their callees included)."""
        stats = sorted(self.function_stats(), key=lambda s: (-s.total, -s.own, s.frame))
        return stats[:limit]

    # -- saving -----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dictionary; :meth:`from_json` reads it back."""
        return {
            "version": FORMAT_VERSION,
            "name": self.name,
            "pid": self.pid,
            "duration": self.duration,
            "rate": self.rate,
            "command_line": self.command_line,
            "processes": {str(pid): cmd for pid, cmd in sorted(self.processes.items())},
            "stacks": [
                {"frames": list(s.frames), "count": s.count, "pid": s.pid} for s in self.stacks
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProfileResult:
        """Rebuild a result from :meth:`to_json` output."""
        if data.get("version") != FORMAT_VERSION:
            raise ProfilingError(
                f"unsupported profile format version {data.get('version')!r}; this obs reads "
                f"version {FORMAT_VERSION}. Record the profile again with this obs."
            )
        try:
            return cls(
                stacks=tuple(
                    StackSample(tuple(s["frames"]), int(s["count"]), s.get("pid"))
                    for s in data["stacks"]
                ),
                pid=data.get("pid"),
                duration=float(data.get("duration", 0.0)),
                rate=int(data.get("rate", 100)),
                command_line=str(data.get("command_line", "")),
                processes={int(pid): str(cmd) for pid, cmd in data.get("processes", {}).items()},
                name=str(data.get("name", "profile")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfilingError(
                f"not an obs profile ({type(exc).__name__}: {exc}); pass a file written by "
                "ProfileResult.save()."
            ) from exc

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the result as JSON (sorted keys, 2-space indent, trailing newline)."""
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ProfileResult:
        """Read a result written by :meth:`save`."""
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            raise ProfilingError(f"cannot read profile {os.fspath(path)!r}: {exc}.") from exc
        return cls.from_json(data)

    def render(self, fmt: str) -> str:
        """Render as ``svg``, ``speedscope`` or ``collapsed`` text."""
        from obs.profiling.renderers import render

        return render(self, fmt)
