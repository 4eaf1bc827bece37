"""Named work for the slow-profile server tests: each function is what a profile must show."""

from __future__ import annotations

import asyncio
import time
import types
from collections.abc import Callable
from typing import Any


def compute_for(seconds: float) -> int:
    n = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        n += sum(range(200))
    return n


def cpu_heavy_function(seconds: float) -> int:
    return compute_for(seconds)


def blocking_wait_function(seconds: float) -> None:
    time.sleep(seconds)


async def sleeping_coroutine(seconds: float) -> None:
    await asyncio.sleep(seconds)


def _renamed(function: Callable[..., Any], name: str) -> Callable[..., Any]:
    code = function.__code__.replace(co_name=name, co_qualname=name)
    return types.FunctionType(code, function.__globals__, name, function.__defaults__)


#: Twenty distinct named functions per kind, for the concurrency tests.
COMPUTE = [_renamed(cpu_heavy_function, f"compute_of_request_{i}") for i in range(20)]
WAIT = [_renamed(blocking_wait_function, f"wait_of_request_{i}") for i in range(20)]
SLEEP = [_renamed(sleeping_coroutine, f"sleep_of_request_{i}") for i in range(20)]
