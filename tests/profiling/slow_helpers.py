"""Helpers shared by the slow-request profile tests: named work, and reading a kept profile."""

from __future__ import annotations

import asyncio
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from obs.profiling.result import ProfileResult


def share_of(result: ProfileResult, function: str) -> float:
    """The share of *result*'s samples with *function* (a qualname) on the stack."""
    total = sum(
        stat.total for stat in result.function_stats() if stat.frame.startswith(function + " (")
    )
    return total / result.samples if result.samples else 0.0


def functions_in(result: ProfileResult) -> set[str]:
    """The qualnames of every frame in *result*."""
    return {frame.split(" (", 1)[0] for stack in result.stacks for frame in stack.frames}


def load_index(svg_path: str | Path) -> ProfileResult:
    """The profile whose SVG is *svg_path* (the path the access line names)."""
    return ProfileResult.load(str(svg_path)[: -len(".svg")] + ".json")


def compute_for(seconds: float) -> int:
    """Busy CPU work for *seconds* (wall clock)."""
    n = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        n += sum(range(200))
    return n


def renamed(function: Callable[..., Any], name: str) -> Callable[..., Any]:
    """A copy of *function* whose code object is called *name*, so samples can tell them apart."""
    code = function.__code__.replace(co_name=name, co_qualname=name)
    return types.FunctionType(code, function.__globals__, name, function.__defaults__)


def compute_template(seconds: float) -> int:
    return compute_for(seconds)


def wait_template(seconds: float) -> None:
    time.sleep(seconds)


async def sleep_template(seconds: float) -> None:
    await asyncio.sleep(seconds)
