"""The multiprocess directory: where it is, how it is prepared, how readers and folders lock it.

prometheus_client's multiprocess mode keeps each worker's values in ``*.db`` files under
``PROMETHEUS_MULTIPROC_DIR``. This module owns that directory for obs: set-up in the server's
master (:func:`prepare`), the lock that keeps a scrape from seeing a dead worker's counts twice
(:func:`locked`), and the small JSON side files' reading and writing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from typing import Any

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
        if name == LOCK_FILE or pid_of(name) == own:
            continue
        if name.endswith((".db", ".json", ".tmp")):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(path, name))
    os.environ[ENV] = path
    return path


def pid_of(name: str) -> str:
    """The pid part of a file name such as ``counter_123.db`` or ``obs_123.json``."""
    stem = name.rsplit(".", 1)[0]
    return stem.rsplit("_", 1)[-1]


@contextlib.contextmanager
def locked(path: str, *, exclusive: bool) -> Iterator[None]:
    """Hold the directory's lock: shared for readers, exclusive for folding."""
    fd = os.open(os.path.join(path, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


def write_json(target: str, data: Any) -> None:
    """Replace *target* atomically with *data* as compact JSON."""
    tmp = f"{target}.{threading.get_ident()}.tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump(data, out, separators=(",", ":"))
    os.replace(tmp, target)


def read_side_files(paths: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The side files of *paths* that could be read, by path."""
    out = {}
    for path in paths:
        try:
            with open(path, encoding="utf-8") as source:
                out[path] = json.load(source)
        except (OSError, ValueError):  # gone (worker folded) or being replaced
            continue
    return out
