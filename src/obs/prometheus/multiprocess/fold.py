# mypy: disable-error-code="no-untyped-call"
# (prometheus_client's multiprocess helpers carry no annotations)
"""Folding dead workers: gunicorn's ``child_exit`` adds a dead worker's counters and histograms to
``*_aggregate.db`` files and deletes its own, so recycled workers never make the directory, or
the scrape, grow; and the master's start-up (:func:`prepare`), which clears what dead processes
left in the directory.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable

from prometheus_client.multiprocess import mark_process_dead

from obs.private_files import ensure_private_directory, random_suffix
from obs.prometheus import _compat
from obs.prometheus.multiprocess.exemplars import exemplar_row, merge_exemplars
from obs.prometheus.multiprocess.files import (
    AGGREGATE,
    ENV,
    LOCK_FILE,
    SIDE_PREFIX,
    default_directory,
    directory,
    locked,
    pid_of,
    read_side_files,
    write_json,
)
from obs.selfreport import report_internal_error

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


def fold_dead_worker(pid: int, path: str | None = None) -> bool:
    """Fold the files of the dead process *pid* into the aggregate files, then delete them.

    Counts are never lost: counters, histograms and summaries are added, ``sum``/``max``/``min``
    /``mostrecent`` gauges combined by their mode, ``live*`` gauges dropped
    (``mark_process_dead``), exemplars merged (latest wins). Gauges in prometheus_client's
    default ``all`` mode keep their per-pid files, as that mode promises.

    Each aggregate is rewritten into a new, fully allocated file that replaces the old one only
    once complete, so a full disk leaves the dead worker's file in place (the scrape still
    counts it) instead of a half-folded aggregate, and never kills the calling process (the
    gunicorn master) with SIGBUS. A failure is counted in ``obs_internal_errors_total``
    (component ``multiprocess fold``); returns whether everything was folded. Never raises.

    A call made while this process is already folding (gunicorn 22, for one, reaps workers, and
    so runs ``child_exit``, inside its SIGCHLD handler, which can interrupt a fold) does not
    wait for the lock the interrupted fold holds, which would never come: it leaves *pid* to
    that fold, which folds it before returning (and this call returns ``True``).
    """
    global _folding
    if _folding:
        _deferred.append((pid, path))
        return True
    complete = True
    while True:
        _folding = True
        try:
            complete = _fold_one(pid, path) and complete
            while _deferred:
                pid, path = _deferred.pop(0)
                complete = _fold_one(pid, path) and complete
        finally:
            _folding = False
        if not _deferred:  # one that came between the last check and the flag's reset
            return complete
        pid, path = _deferred.pop(0)


#: Whether this process is inside :func:`fold_dead_worker`, and the pids (with their
#: directories) that calls interrupting it left to it.
_folding = False
_deferred: list[tuple[int, str | None]] = []


def _fold_one(pid: int, path: str | None) -> bool:
    try:
        path = path or directory()
        if not path or not os.path.isdir(path):
            return True
        with locked(path, exclusive=True):
            return _fold_locked(pid, path)
    except Exception as exc:
        report_internal_error(COMPONENT, exc)
        return False


COMPONENT = "multiprocess fold"


def prepare(path: str | None = None) -> str:
    """Create the directory, clear what dead processes left in it, and export it; call once in
    the server's master process before any worker starts (gunicorn's ``on_starting`` does).

    A directory left by a previous run (no process that wrote to it is alive) is emptied. One
    that live processes still write to — the old master and workers of a gunicorn binary
    upgrade (``kill -USR2``) — keeps their files and the aggregates; the dead processes' files
    are folded into the aggregates as a worker's exit folds them. Files of the calling process
    itself are kept: with ``--preload`` the master already created its metrics.
    """
    path = path or directory() or default_directory()
    ensure_private_directory(path)  # UnsafePathError: someone else's, or writable by others
    own = str(os.getpid())
    names = [n for n in os.listdir(path) if n != LOCK_FILE and n.endswith((".db", ".json", ".tmp"))]
    pids = {pid for n in names if (pid := pid_of(n)).isdigit() and pid != own}
    writers = live_writers(path, names)
    if writers:
        for pid in sorted(pids - writers):
            fold_dead_worker(int(pid), path)
    else:
        for name in names:
            if pid_of(name) != own:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(path, name))  # a planted link goes, never its target
    os.environ[ENV] = path
    return path


def live_writers(path: str, names: Iterable[str] | None = None) -> set[str]:
    """The pids, other than this process's, of the processes still writing to *path* (of its
    file *names*, or of every file in it): another master's workers during a binary upgrade."""
    own = str(os.getpid())
    return {
        pid
        for name in (os.listdir(path) if names is None else names)
        if (pid := pid_of(name)).isdigit() and pid != own and writes_to(int(pid), path)
    }


def writes_to(pid: int, path: str) -> bool:
    """Whether process *pid* is alive and, where ``/proc`` says so, has a file of *path* mapped
    (prometheus_client keeps every ``.db`` file it writes mapped): a pid that a process of a
    previous run had, now reused by an unrelated process, is not a writer."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's: it cannot write to this private directory
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as maps:
            inside = os.path.realpath(path) + os.sep
            return any(inside in line for line in maps)
    except FileNotFoundError:  # gone since, or no /proc (not Linux): alive is all we know
        return not os.path.isdir("/proc/self")
    except PermissionError:
        return False


def _fold_locked(pid: int, path: str) -> bool:
    complete = True
    mark_process_dead(pid, path)
    suffix = f"_{pid}.db"
    for name in os.listdir(path):
        if not name.endswith(suffix):
            continue
        kind = name[: -len(suffix)]
        combine = _FOLD.get(kind)
        if combine is None:
            continue
        try:
            _fold_file(
                os.path.join(path, name), os.path.join(path, f"{kind}_{AGGREGATE}.db"), combine
            )
        except OSError as exc:  # a full disk: the worker's own file stays and is still scraped
            complete = False
            report_internal_error(COMPONENT, exc)
    side = os.path.join(path, f"{SIDE_PREFIX}{pid}.json")
    if os.path.exists(side):
        aggregate = os.path.join(path, f"{SIDE_PREFIX}{AGGREGATE}.json")
        merged = merge_exemplars(read_side_files([aggregate, side]))
        try:
            write_json(aggregate, {"exemplars": [exemplar_row(k, v) for k, v in merged.items()]})
            os.remove(side)
        except OSError as exc:
            complete = False
            report_internal_error(COMPONENT, exc)
    return complete


def _fold_file(
    source: str,
    target: str,
    combine: Callable[[tuple[float, float], tuple[float, float]], tuple[float, float]],
) -> None:
    current: dict[str, tuple[float, float]] = {}
    if os.path.exists(target):
        current = {
            key: (value, ts)
            for key, value, ts, _ in _compat.MmapedDict.read_all_values_from_file(target)
        }
    for key, value, ts, _ in _compat.MmapedDict.read_all_values_from_file(source):
        old = current.get(key)
        current[key] = (value, ts) if old is None else combine(old, (value, ts))
    fresh = f"{target}.{random_suffix()}.tmp"
    try:
        aggregate = _compat.private_mmaped_dict()(fresh)
        try:
            for key, (value, ts) in current.items():
                aggregate.write_value(key, value, ts)
        finally:
            aggregate.close()
        os.replace(fresh, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(fresh)
        raise
    os.remove(source)
