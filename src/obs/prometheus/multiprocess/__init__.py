"""Metrics that add up across worker processes (gunicorn, uvicorn ``--workers``).

prometheus_client's multiprocess mode keeps each worker's values in ``*.db`` files under
``PROMETHEUS_MULTIPROC_DIR``; any worker's ``/metrics`` merges them. obs builds on it where
users hurt:

- **exemplars**, which that mode drops, are kept in a small per-worker side file and merged into
  the scrape, latest wins (:mod:`.exemplars`);
- **process and GC metrics**, which that mode loses, are served for every live process,
  labelled by ``pid`` (:mod:`.collector`);
- **dead workers are folded** into aggregate files, so recycled workers never make the
  directory, or the scrape, grow (:mod:`.fold`);
- the text-format scrape merges the ``.db`` files itself, several times faster (:mod:`.merge`).

Nothing here is imported by a single-process app. See ``docs/multiprocess.md``.
"""

from __future__ import annotations

from obs.prometheus.multiprocess.collector import AggregateCollector, scrape_registry
from obs.prometheus.multiprocess.exemplars import (
    FLUSH_INTERVAL,
    MAX_EXEMPLARS,
    ExemplarHistogram,
    exemplar_histogram,
    start_side_file,
    start_side_file_in_worker,
    write_side_file,
)
from obs.prometheus.multiprocess.files import (
    ENV,
    default_directory,
    directory,
    ensure_multiprocess_values,
    recorded_label_sets,
)
from obs.prometheus.multiprocess.fold import fold_dead_worker, prepare

__all__ = [
    "ENV",
    "FLUSH_INTERVAL",
    "MAX_EXEMPLARS",
    "AggregateCollector",
    "ExemplarHistogram",
    "default_directory",
    "directory",
    "ensure_multiprocess_values",
    "exemplar_histogram",
    "fold_dead_worker",
    "prepare",
    "recorded_label_sets",
    "scrape_registry",
    "start_side_file",
    "start_side_file_in_worker",
    "write_side_file",
]
