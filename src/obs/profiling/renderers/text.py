"""The short text summary ``obs profile`` prints after recording."""

from __future__ import annotations

from typing import TYPE_CHECKING

from obs.escaping import escape_control

if TYPE_CHECKING:
    from obs.profiling.result import FunctionStat, ProfileResult


def _table(title: str, stats: list[FunctionStat], samples: int, key: str) -> list[str]:
    lines = [title]
    if not stats:
        lines.append("  (no samples)")
    for stat in stats:
        count = stat.own if key == "own" else stat.total
        lines.append(f"  {100.0 * count / samples:5.1f}%  {count:>7}  {stat.frame}")
    return lines


def render_summary(result: ProfileResult, limit: int = 10) -> str:
    """Samples, sampled pids, and the top functions by own time and by total time.

    Function names, file paths and pids come from the profiled process or a profile file:
    control characters in them are written ``\\xNN``, so that printing the summary cannot
    drive the operator's terminal (title, clipboard, screen)."""
    samples = result.samples
    pids = ", ".join(str(pid) for pid in result.pids) or (str(result.pid) if samples else "none")
    lines = [
        f"{samples} sample{'' if samples == 1 else 's'} over {result.duration:.1f}s at "
        f"{result.rate} Hz; pids sampled: {pids}",
    ]
    if samples == 0:
        lines.append(
            "No samples: the process was idle. Add --idle to include waiting threads, or profile "
            "while it is handling load."
        )
        return _joined(lines)
    lines += _table("Top functions by own time:", result.top_own(limit), samples, "own")
    lines += _table("Top functions by total time:", result.top_total(limit), samples, "total")
    return _joined(lines)


def _joined(lines: list[str]) -> str:
    return "".join(escape_control(line) + "\n" for line in lines)
