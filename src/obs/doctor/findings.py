"""What a check found: one line, its status and, unless ok, what to do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: ``skip``: the check could not run because an earlier one failed (its fix names that one).
Status = Literal["ok", "warn", "fail", "skip"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of ``obs doctor``'s report."""

    status: Status
    check: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        """``ok   logging: ...``, with ``-> what to do`` when there is something to do."""
        text = f"{self.status:<4} {self.check}: {self.detail}"
        return f"{text} -> {self.fix}" if self.fix and self.status != "ok" else text


def ok(check: str, detail: str) -> Finding:
    return Finding("ok", check, detail)


def warn(check: str, detail: str, fix: str) -> Finding:
    return Finding("warn", check, detail, fix)


def fail(check: str, detail: str, fix: str) -> Finding:
    return Finding("fail", check, detail, fix)


def skip(check: str, detail: str, fix: str) -> Finding:
    """Not checked: what it needs is missing, and *fix* names the check to fix first."""
    return Finding("skip", check, f"not checked: {detail}", fix)
