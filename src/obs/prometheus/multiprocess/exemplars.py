"""Exemplars across workers: prometheus_client's multiprocess mode drops them, obs keeps them.

Each worker keeps the latest exemplar per histogram bucket and writes them, with its GC counts,
to a small side file (``obs_<pid>.json``), rewritten at most every :data:`FLUSH_INTERVAL` seconds
by a daemon thread; the scrape merges the side files, latest wins.
"""

from __future__ import annotations

import gc
import math
import os
import sys
import threading
import time
from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

from prometheus_client import Histogram

from obs.prometheus import _compat
from obs.prometheus.multiprocess.files import SIDE_PREFIX, directory, write_json
from obs.prometheus.textformat import go_float
from obs.selfreport import report_internal_error

#: Seconds between two writes of a worker's side file (exemplars, GC counts).
FLUSH_INTERVAL = 1.0
#: Most exemplars a worker keeps (one per histogram bucket and label set, latest wins).
MAX_EXEMPLARS = 5000

ExemplarKey = tuple[str, tuple[tuple[str, str], ...]]  # metric name, labels with ``le``
ExemplarValue = tuple[dict[str, str], float, float]  # exemplar labels, value, timestamp


class ExemplarChild:
    """A prometheus_client histogram child that also keeps the latest exemplar per bucket."""

    __slots__ = ("_bounds", "_child", "exemplars", "keys")

    def __init__(self, child: Any, name: str, labels: dict[str, str], bounds: Sequence[float]):
        self._child = child
        self._bounds = bounds
        self.keys: list[ExemplarKey] = [
            (name, tuple(sorted({**labels, "le": go_float(b)}.items())))
            for b in (*bounds, math.inf)
        ]
        self.exemplars: list[ExemplarValue | None] = [None] * len(self.keys)

    def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
        self._child.observe(amount)
        if exemplar is not None:
            self.exemplars[bisect_left(self._bounds, amount)] = (exemplar, amount, time.time())
            _side_file.touch()


class ExemplarHistogram:
    """A multiprocess histogram whose exemplars survive (see :class:`SideFile`)."""

    def __init__(self, histogram: Histogram, buckets: Sequence[float]) -> None:
        self.histogram = histogram
        self._bounds = tuple(sorted(float(b) for b in buckets if b != math.inf))
        self._children: dict[tuple[str, ...], ExemplarChild] = {}
        self._lock = threading.Lock()

    def labels(self, *values: str) -> ExemplarChild:
        child = self._children.get(values)
        if child is None:
            with self._lock:
                child = self._children.get(values)
                if child is None:
                    histogram = self.histogram
                    labels = dict(zip(_compat.histogram_labelnames(histogram), values, strict=True))
                    child = ExemplarChild(
                        histogram.labels(*values),
                        _compat.histogram_name(histogram),
                        labels,
                        self._bounds,
                    )
                    self._children[values] = child
                    _side_file.register(child)
        return child

    def __getattr__(self, name: str) -> Any:
        return getattr(self.histogram, name)


class SideFile:
    """This process's ``obs_<pid>.json``: exemplars and GC counts, written by a daemon thread
    at most every :data:`FLUSH_INTERVAL` seconds, and at exit."""

    def __init__(self) -> None:
        self._children: list[ExemplarChild] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        #: Whether this process was forked since this module was imported (a worker).
        self.forked = False
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._thread = None  # threads do not survive fork(); the next touch starts one
        self.forked = True

    def register(self, child: ExemplarChild) -> None:
        with self._lock:
            self._children.append(child)
        self.touch()

    def touch(self) -> None:
        if self._thread is None:
            self.start()

    def start(self) -> None:
        """Start the writer thread of this process (idempotent)."""
        with self._lock:
            if self._thread is not None or not directory():
                return
            self._thread = threading.Thread(target=self._run, name="obs-side-file", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            self.write()
            time.sleep(FLUSH_INTERVAL)

    def write(self) -> None:
        """Write the side file now; never raises."""
        path = directory()
        if not path:
            return
        try:
            rows: list[list[Any]] = []
            for child in list(self._children):
                for key, value in zip(child.keys, child.exemplars, strict=True):
                    if value is not None and len(rows) < MAX_EXEMPLARS:
                        rows.append(exemplar_row(key, value))
            stats = [
                [s.get("collections", 0), s.get("collected", 0), s.get("uncollectable", 0)]
                for s in gc.get_stats()
            ]
            write_json(
                os.path.join(path, f"{SIDE_PREFIX}{os.getpid()}.json"),
                {"exemplars": rows, "gc": stats},
            )
        except Exception as exc:
            report_internal_error("multiprocess side file", exc)


_side_file = SideFile()


def exemplar_histogram(histogram: Histogram, buckets: Sequence[float]) -> ExemplarHistogram:
    """Wrap a multiprocess *histogram* so that its exemplars reach the scrape."""
    return ExemplarHistogram(histogram, buckets)


def write_side_file() -> None:
    """Write this process's side file now (gunicorn hooks call it at worker exit, and in the
    master, whose GC counts are otherwise never written)."""
    _side_file.write()


def start_side_file() -> None:
    """Start this process's side-file writer (gunicorn's ``post_fork``), so that even a worker
    that has served nothing reports its GC counts."""
    _side_file.start()


def start_side_file_in_worker() -> None:
    """Start the side-file writer when a middleware is built in a worker (uvicorn
    ``--workers``, which has no ``post_fork``), so that a worker that has not served a request
    yet still has its process and GC series.

    Not in a gunicorn master that loads the app before forking (``--preload``): a thread there
    would make every ``fork()`` of a worker a multi-threaded one; its workers start theirs in
    ``post_fork``.
    """
    if "gunicorn.arbiter" in sys.modules and not _side_file.forked:
        return
    _side_file.start()


def exemplar_row(key: ExemplarKey, value: ExemplarValue) -> list[Any]:
    """One exemplar as a side file stores it."""
    return [key[0], [list(pair) for pair in key[1]], value[0], value[1], value[2]]


def merge_exemplars(files: dict[str, dict[str, Any]]) -> dict[ExemplarKey, ExemplarValue]:
    """The exemplars of several side files, the latest of each bucket winning."""
    merged: dict[ExemplarKey, ExemplarValue] = {}
    for data in files.values():
        for name, labels, ex_labels, value, ts in data.get("exemplars", ()):
            key = (name, tuple((str(k), str(v)) for k, v in labels))
            current = merged.get(key)
            if current is None or current[2] < ts:
                merged[key] = (ex_labels, float(value), float(ts))
    return merged
