"""``obs doctor``: the problems users of obs (and of its peers) report most, each diagnosed.

Every check is a small function returning :class:`Finding` lines: ``ok``, ``warn`` or
``fail`` and, unless ok, what to do. They look at what a running service shows from outside
(its responses and ``/metrics`` with ``--url``), at its process (``/proc/<pid>``: command
line, environment, stdout, workers, with ``--pid``) and at a Prometheus (``--prometheus``); no
check needs anything from the service beyond what obs already serves.
"""

from __future__ import annotations

from obs.doctor.findings import Finding, Status
from obs.doctor.run import run_checks

__all__ = ["Finding", "Status", "run_checks"]
