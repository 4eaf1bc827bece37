# mypy: disable-error-code="no-untyped-call"
# (prometheus_client's multiprocess helpers carry no annotations)
"""Metrics that add up across worker processes (gunicorn, uvicorn ``--workers``).

prometheus_client's multiprocess mode keeps each worker's values in ``*.db`` files under
``PROMETHEUS_MULTIPROC_DIR``; any worker's ``/metrics`` merges them. obs builds on it where
users hurt:

- **exemplars**, which that mode drops, are kept in a small per-worker side file
  (``obs_<pid>.json``, rewritten at most every :data:`FLUSH_INTERVAL` seconds) and merged into
  the scrape, latest wins;
- **process and GC metrics**, which that mode loses, are served for every live process,
  labelled by ``pid`` (process metrics read from ``/proc/<pid>``, GC counts from the side files);
- **dead workers are folded**: :func:`fold_dead_worker` (gunicorn's ``child_exit``) adds a dead
  worker's counters and histograms to ``*_aggregate.db`` files and deletes its own, so recycled
  workers never make the directory, or the scrape, grow.

Readers take a shared lock and folding an exclusive one (``flock`` on ``.obs.lock``), so a
scrape never sees a dead worker's counts twice or not at all. See ``docs/multiprocess.md``.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import math
import os
import tempfile
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import mark_process_dead
from prometheus_client.utils import floatToGoString

ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Seconds between two writes of a worker's side file (exemplars, GC counts).
FLUSH_INTERVAL = 1.0
#: Most exemplars a worker keeps (one per histogram bucket and label set, latest wins).
MAX_EXEMPLARS = 5000

_LOCK_FILE = ".obs.lock"
_AGGREGATE = "aggregate"
_SIDE_PREFIX = "obs_"

# How a dead worker's values join the aggregate, by file kind (the file name before the pid).
_FOLD: dict[str, Callable[[tuple[float, float], tuple[float, float]], tuple[float, float]]] = {
    "counter": lambda a, b: (a[0] + b[0], max(a[1], b[1])),
    "histogram": lambda a, b: (a[0] + b[0], max(a[1], b[1])),
    "summary": lambda a, b: (a[0] + b[0], max(a[1], b[1])),
    "gauge_sum": lambda a, b: (a[0] + b[0], max(a[1], b[1])),
    "gauge_max": lambda a, b: a if a[0] >= b[0] else b,
    "gauge_min": lambda a, b: a if a[0] <= b[0] else b,
    "gauge_mostrecent": lambda a, b: a if a[1] >= b[1] else b,
}


def directory() -> str | None:
    """The multiprocess directory, or ``None`` in single-process mode."""
    return os.environ.get(ENV) or None


def ensure_multiprocess_values() -> None:
    """Make prometheus_client store new values in the directory's files.

    prometheus_client picks its value class when it is first imported; when that happened
    before ``PROMETHEUS_MULTIPROC_DIR`` was set (importing ``obs`` imports it), values created
    from now on would otherwise stay in the process and never add up across workers.
    """
    from prometheus_client import values

    if directory() and not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.get_value_class()


def default_directory() -> str:
    """Where obs puts the directory when ``PROMETHEUS_MULTIPROC_DIR`` is unset: one per server."""
    return os.path.join(tempfile.gettempdir(), f"obs-prometheus-multiproc-{os.getpid()}")


def prepare(path: str | None = None) -> str:
    """Create and empty the directory, and export it; call once in the server's master process
    before any worker starts (gunicorn's ``on_starting`` does).

    Files of the calling process itself are kept: with ``--preload`` the master already
    created its metrics.
    """
    path = path or directory() or default_directory()
    os.makedirs(path, exist_ok=True)
    own = str(os.getpid())
    for name in os.listdir(path):
        if name == _LOCK_FILE or _pid_of(name) == own:
            continue
        if name.endswith((".db", ".json", ".tmp")):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(path, name))
    os.environ[ENV] = path
    return path


def _pid_of(name: str) -> str:
    stem = name.rsplit(".", 1)[0]
    return stem.rsplit("_", 1)[-1]


@contextlib.contextmanager
def _locked(path: str, *, exclusive: bool) -> Iterator[None]:
    fd = os.open(os.path.join(path, _LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


# -- folding dead workers ------------------------------------------------------------------------


def fold_dead_worker(pid: int, path: str | None = None) -> None:
    """Fold the files of the dead process *pid* into the aggregate files, then delete them.

    Counts are never lost: counters, histograms and summaries are added, ``sum``/``max``/``min``
    /``mostrecent`` gauges combined by their mode, ``live*`` gauges dropped
    (``mark_process_dead``), exemplars merged (latest wins). Gauges in prometheus_client's
    default ``all`` mode keep their per-pid files, as that mode promises.
    """
    path = path or directory()
    if not path or not os.path.isdir(path):
        return
    with _locked(path, exclusive=True):
        mark_process_dead(pid, path)
        suffix = f"_{pid}.db"
        for name in os.listdir(path):
            if not name.endswith(suffix):
                continue
            kind = name[: -len(suffix)]
            combine = _FOLD.get(kind)
            if combine is not None:
                _fold_file(
                    os.path.join(path, name), os.path.join(path, f"{kind}_{_AGGREGATE}.db"), combine
                )
        side = os.path.join(path, f"{_SIDE_PREFIX}{pid}.json")
        if os.path.exists(side):
            aggregate = os.path.join(path, f"{_SIDE_PREFIX}{_AGGREGATE}.json")
            merged = _merge_exemplars(_read_side_files([aggregate, side]))
            _write_json(aggregate, {"exemplars": [_exemplar_row(k, v) for k, v in merged.items()]})
            os.remove(side)


def _fold_file(
    source: str,
    target: str,
    combine: Callable[[tuple[float, float], tuple[float, float]], tuple[float, float]],
) -> None:
    aggregate = MmapedDict(target)
    try:
        current = {key: (value, ts) for key, value, ts in aggregate.read_all_values()}
        for key, value, ts, _ in MmapedDict.read_all_values_from_file(source):
            old = current.get(key)
            new = (value, ts) if old is None else combine(old, (value, ts))
            aggregate.write_value(key, new[0], new[1])
            current[key] = new
    finally:
        aggregate.close()
    os.remove(source)


# -- the per-worker side file ------------------------------------------------------------------

ExemplarKey = tuple[str, tuple[tuple[str, str], ...]]  # metric name, labels with ``le``
ExemplarValue = tuple[dict[str, str], float, float]  # exemplar labels, value, timestamp


class _ExemplarChild:
    """A prometheus_client histogram child that also keeps the latest exemplar per bucket."""

    __slots__ = ("_bounds", "_child", "exemplars", "keys")

    def __init__(self, child: Any, name: str, labels: dict[str, str], bounds: Sequence[float]):
        self._child = child
        self._bounds = bounds
        self.keys: list[ExemplarKey] = [
            (name, tuple(sorted({**labels, "le": floatToGoString(b)}.items())))
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
        self._children: dict[tuple[str, ...], _ExemplarChild] = {}
        self._lock = threading.Lock()

    def labels(self, *values: str) -> _ExemplarChild:
        child = self._children.get(values)
        if child is None:
            with self._lock:
                child = self._children.get(values)
                if child is None:
                    histogram = self.histogram
                    labels = dict(zip(histogram._labelnames, values, strict=True))
                    child = _ExemplarChild(
                        histogram.labels(*values), histogram._name, labels, self._bounds
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
        self._children: list[_ExemplarChild] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._thread = None  # threads do not survive fork(); the next touch starts one

    def register(self, child: _ExemplarChild) -> None:
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
                        rows.append(_exemplar_row(key, value))
            stats = [
                [s.get("collections", 0), s.get("collected", 0), s.get("uncollectable", 0)]
                for s in gc.get_stats()
            ]
            _write_json(
                os.path.join(path, f"{_SIDE_PREFIX}{os.getpid()}.json"),
                {"exemplars": rows, "gc": stats},
            )
        except Exception as exc:
            from obs._internal import report_internal_error

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


def _exemplar_row(key: ExemplarKey, value: ExemplarValue) -> list[Any]:
    return [key[0], [list(pair) for pair in key[1]], value[0], value[1], value[2]]


def _write_json(target: str, data: Any) -> None:
    tmp = f"{target}.{threading.get_ident()}.tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump(data, out, separators=(",", ":"))
    os.replace(tmp, target)


def _read_side_files(paths: Iterable[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for path in paths:
        try:
            with open(path, encoding="utf-8") as source:
                out[path] = json.load(source)
        except (OSError, ValueError):  # gone (worker folded) or being replaced
            continue
    return out


def _merge_exemplars(files: dict[str, dict[str, Any]]) -> dict[ExemplarKey, ExemplarValue]:
    merged: dict[ExemplarKey, ExemplarValue] = {}
    for data in files.values():
        for name, labels, ex_labels, value, ts in data.get("exemplars", ()):
            key = (name, tuple((str(k), str(v)) for k, v in labels))
            current = merged.get(key)
            if current is None or current[2] < ts:
                merged[key] = (ex_labels, float(value), float(ts))
    return merged


def scrape_registry(path: str | None = None) -> CollectorRegistry:
    """A registry whose scrape is the aggregate of all processes writing to *path*
    (see :mod:`obs._aggregate`)."""
    from obs._aggregate import scrape_registry as build

    return build(path)
