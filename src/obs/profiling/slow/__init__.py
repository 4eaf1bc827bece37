"""Tail-kept request profiles: every request is sampled, only the slow ones keep a flame graph.

:class:`SlowRequestProfiler` (in :mod:`obs.profiling.slow.sampler`) is what the middleware holds
when ``OBS_SLOW_PROFILES`` is on; :mod:`obs.profiling.slow.store` reads and writes the files that
``obs profiles list|show|open`` show.
"""

from __future__ import annotations

from obs.profiling.slow.sampler import RequestSamples, SlowRequestProfiler

__all__ = ["RequestSamples", "SlowRequestProfiler"]
