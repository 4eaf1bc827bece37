"""Profiling on demand: py-spy flame graphs of running processes, pyinstrument in process.

- :mod:`obs.profiling.pyspy` drives py-spy (``obs profile <pid>``, ``obs dump <pid>``);
- :class:`ProfileResult` holds collapsed stacks; :mod:`obs.profiling.renderers` draws them;
- :class:`RequestProfiler` profiles one request when it carries the ``X-Obs-Profile`` token;
- :func:`profile` and :func:`profiled` profile a block of code or a function.

pyinstrument is imported only when a profile starts, so importing this package is cheap.
"""

from __future__ import annotations

from obs.profiling.block import BlockProfile, profile, profiled
from obs.profiling.request import ActiveProfile, RequestProfiler
from obs.profiling.result import FunctionStat, ProfileResult, StackSample

__all__ = [
    "ActiveProfile",
    "BlockProfile",
    "FunctionStat",
    "ProfileResult",
    "RequestProfiler",
    "StackSample",
    "profile",
    "profiled",
]
