"""Multiprocess metrics, public entry point: see :mod:`obs.prometheus.multiprocess`.

obs.multiprocess.fold_dead_worker(pid)   # from a server's child-exit hook of your own
"""

from __future__ import annotations

from obs.prometheus.multiprocess import *  # noqa: F403
from obs.prometheus.multiprocess import __all__ as __all__
