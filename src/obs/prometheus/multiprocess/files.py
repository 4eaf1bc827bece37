"""The multiprocess directory: where it is, how it is prepared, how readers and folders lock it.

prometheus_client's multiprocess mode keeps each worker's values in ``*.db`` files under
``PROMETHEUS_MULTIPROC_DIR``. This module owns that directory for obs: set-up in the server's
master (:func:`default_directory`; :func:`obs.prometheus.multiprocess.fold.prepare` clears it), the lock that keeps a scrape from seeing a dead worker's counts twice
(:func:`locked`), and the small JSON side files' reading and writing.

The directory is private (see :mod:`obs.private_files`): created ``0700``, refused when it
belongs to another user or others may write to it, its files opened without following links.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

from obs.private_files import open_private, write_private
from obs.prometheus import _compat

ENV = "PROMETHEUS_MULTIPROC_DIR"
LOCK_FILE = ".obs.lock"
#: The file-name part that stands for "every dead worker" in folded files.
AGGREGATE = "aggregate"
#: Side files are ``obs_<pid>.json``.
SIDE_PREFIX = "obs_"


def directory() -> str | None:
    """The multiprocess directory, or ``None`` in single-process mode."""
    return os.environ.get(ENV) or None


def ensure_multiprocess_values() -> None:
    """Make prometheus_client store new values in the directory's files.

    prometheus_client picks its value class when it is first imported; when that happened
    before ``PROMETHEUS_MULTIPROC_DIR`` was set (importing ``obs`` imports it), values created
    from now on would otherwise stay in the process and never add up across workers.
    """
    if directory():
        _compat.use_multiprocess_values()


#: The name of a directory obs creates, before its random part.
DEFAULT_PREFIX = "obs-prometheus-multiproc-"


def default_directory() -> str:
    """Create a new directory for a server whose ``PROMETHEUS_MULTIPROC_DIR`` is unset.

    ``mkdtemp`` makes it ``0700`` under an unpredictable name, atomically: another local user
    cannot create it first (a name such as ``…-<master pid>`` can be squatted).
    """
    return tempfile.mkdtemp(prefix=DEFAULT_PREFIX)


def pid_of(name: str) -> str:
    """The pid part of a file name such as ``counter_123.db`` or ``obs_123.json``."""
    stem = name.rsplit(".", 1)[0]
    return stem.rsplit("_", 1)[-1]


@contextlib.contextmanager
def locked(path: str, *, exclusive: bool) -> Iterator[None]:
    """Hold the directory's lock: shared for readers, exclusive for folding."""
    fd = open_private(os.path.join(path, LOCK_FILE), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


def write_json(target: str, data: Any) -> None:
    """Replace *target* atomically with *data* as compact JSON (a new ``0600`` file under an
    unpredictable name, created exclusively, then renamed over *target*)."""
    write_private(target, json.dumps(data, separators=(",", ":")), replace=True)


def read_side_files(paths: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The side files of *paths* that could be read, by path."""
    out = {}
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, encoding="utf-8") as source:
                out[path] = json.load(source)
        except (OSError, ValueError):  # gone (worker folded), being replaced, or a link
            continue
    return out


def recorded_label_sets(
    metric: str, labels: tuple[str, ...], path: str | None = None
) -> set[tuple[str, ...]]:
    """The label sets (values of *labels*, in order) of histogram *metric* that any process,
    live or folded, has recorded in the directory: read once at a worker's start, so that its
    cardinality caps count what the other workers, and the recycled ones, already made.
    Never raises (an unreadable file counts nothing)."""
    path = path or directory()
    found: set[tuple[str, ...]] = set()
    if not path or not os.path.isdir(path):
        return found
    try:
        with locked(path, exclusive=False):
            names = [
                n for n in os.listdir(path) if n.startswith("histogram_") and n.endswith(".db")
            ]
            for name in names:
                try:
                    rows = _compat.MmapedDict.read_all_values_from_file(os.path.join(path, name))
                except (OSError, ValueError):
                    continue
                for key, *_ in rows:
                    try:
                        family, _sample, values, _help = json.loads(key)
                    except (ValueError, TypeError):
                        continue
                    if family == metric:
                        found.add(tuple(str(values.get(label, "")) for label in labels))
    except OSError:
        return found
    return found
