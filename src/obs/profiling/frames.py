"""One function in a sampled stack, as collapsed stacks write it: ``handler (app.py:12)``."""

from __future__ import annotations

import re
from dataclasses import dataclass

# A py-spy frame: ``function (file.py:12)``; the location is absent for some native frames.
_FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>.*):(?P<line>\d+)\)$")


@dataclass(frozen=True, slots=True)
class Frame:
    """One function in a stack: its name and where it is defined."""

    name: str
    file: str | None = None
    line: int | None = None

    @classmethod
    def parse(cls, text: str) -> Frame:
        """Read a collapsed-stack frame such as ``handler (app.py:12)``."""
        match = _FRAME.match(text)
        if match is None:
            return cls(text)
        return cls(match["name"], match["file"], int(match["line"]))

    def __str__(self) -> str:
        if self.file is None:
            return self.name
        return f"{self.name} ({self.file}:{self.line})"
