# mypy: disable-error-code="no-untyped-call"
"""Every private name of prometheus_client that obs reads, in one place.

obs's fast exposition and its multiprocess extras need a few internals that prometheus_client
does not export. Each is read here and nowhere else; :data:`PRIVATE_NAMES` lists them so that
``tests/prometheus/test_compat.py`` fails with the symbol and the installed version when a
release renames one.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, Metric
from prometheus_client import validation as _validation

#: ``(dotted name, what obs uses it for)`` of every private name read below.
PRIVATE_NAMES: tuple[tuple[str, str], ...] = (
    ("prometheus_client.registry.CollectorRegistry._lock", "a consistent list of collectors"),
    ("prometheus_client.registry.CollectorRegistry._collector_to_names", "the collectors"),
    ("prometheus_client.registry.CollectorRegistry._target_info", "target info, if set"),
    ("prometheus_client.registry.CollectorRegistry._target_info_metric", "its metric"),
    ("prometheus_client.validation._is_valid_legacy_metric_name", "names written as they are"),
    ("prometheus_client.validation._is_valid_legacy_labelname", "label names likewise"),
    ("prometheus_client.metrics.MetricWrapperBase._name", "an exemplar's metric name"),
    ("prometheus_client.metrics.MetricWrapperBase._labelnames", "an exemplar's labels"),
    ("prometheus_client.multiprocess.MultiProcessCollector._path", "its directory"),
    ("prometheus_client.values.ValueClass._multiprocess", "the value class in force"),
    ("prometheus_client.values.get_value_class", "switching to multiprocess values"),
    ("prometheus_client.mmap_dict.MmapedDict", "reading and folding .db files"),
    ("prometheus_client.values.MmapedDict", "file-backed values opened privately, preallocated"),
    ("prometheus_client.mmap_dict.MmapedDict._init_value", "reserving space before it grows"),
    ("prometheus_client.mmap_dict.MmapedDict._capacity", "its current file size"),
    ("prometheus_client.mmap_dict.MmapedDict._used", "the bytes in use"),
    ("prometheus_client.mmap_dict.MmapedDict._f", "its open file"),
)


def installed_version() -> str:
    """The installed prometheus-client version (for messages; importlib.metadata is loaded only here)."""
    from importlib.metadata import version

    return version("prometheus-client")


is_valid_metric_name: Callable[[str], bool] = _validation._is_valid_legacy_metric_name
is_valid_label_name: Callable[[str], bool] = _validation._is_valid_legacy_labelname


def registry_collectors(registry: CollectorRegistry) -> tuple[list[Any], Metric | None]:
    """The collectors of *registry* in registration order, and its target-info metric."""
    with registry._lock:
        collectors = list(registry._collector_to_names)
        target_info = registry._target_info_metric() if registry._target_info else None
    return collectors, target_info


def histogram_name(histogram: Histogram) -> str:
    return str(histogram._name)


def histogram_labelnames(histogram: Histogram) -> tuple[str, ...]:
    return tuple(histogram._labelnames)


def multiprocess_collector_path(collector: Any) -> str:
    return str(collector._path)


def use_multiprocess_values() -> None:
    """Make prometheus_client create file-backed values from now on (if it does not yet)."""
    from prometheus_client import values

    use_private_files()
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.get_value_class()


#: Bytes a new ``.db`` file gets (prometheus_client starts its files at the same 64 KiB).
INITIAL_FILE_SIZE = 1 << 16
#: An entry's bytes beyond its key: length (4), padding to 8 (at most 8), value and timestamp.
_ENTRY_OVERHEAD = 28

_private_class: Any = None


def private_mmaped_dict() -> Any:
    """prometheus_client's ``MmapedDict``, made safe for a shared host and a full disk.

    prometheus_client opens ``<dir>/<kind>_<pid>.db`` with ``open(name, "a+b")`` (following a
    planted symbolic link) and grows it with ``truncate`` + ``mmap``: on a full filesystem the
    file has holes, and the first write to one kills the process with SIGBUS (the gunicorn master
    too, when it folds a dead worker). The subclass opens the file first without following links
    (it must be a regular file of this user) and reserves its blocks with ``posix_fallocate``
    before each growth, so a full disk is an ``OSError`` (ENOSPC) that the caller counts.
    """
    global _private_class
    if _private_class is not None:
        return _private_class
    from prometheus_client.mmap_dict import MmapedDict

    from obs.private_files import open_private

    class PrivateMmapedDict(MmapedDict):
        def __init__(self, filename: str, read_mode: bool = False) -> None:
            if not read_mode:
                fd = open_private(filename, os.O_RDWR)
                try:
                    size = os.fstat(fd).st_size
                    reserve(fd, max(size, INITIAL_FILE_SIZE))
                except OSError:
                    if size == 0:  # an empty .db file would break every scrape's merge
                        os.remove(filename)
                    raise
                finally:
                    os.close(fd)
            super().__init__(filename, read_mode)

        def _init_value(self, key: str) -> None:
            needed = len(key.encode("utf-8")) + _ENTRY_OVERHEAD
            capacity = self._capacity
            while self._used + needed > capacity:
                capacity *= 2  # the same doubling as prometheus_client's, reserved first
            if capacity != self._capacity:
                reserve(self._f.fileno(), capacity)
            super()._init_value(key)

    _private_class = PrivateMmapedDict
    return PrivateMmapedDict


def reserve(fd: int, size: int) -> None:
    """Allocate the first *size* bytes of *fd* for real (no holes); ``OSError`` when full."""
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is not None:
        fallocate(fd, 0, size)
        return
    # No posix_fallocate (macOS): check the free space, then extend the file.
    if os.fstat(fd).st_size < size:
        free = os.fstatvfs(fd)
        if free.f_bavail * free.f_frsize < size:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        os.ftruncate(fd, size)


def use_private_files() -> None:
    """Make prometheus_client's file-backed values use :func:`private_mmaped_dict`."""
    from prometheus_client import values

    values.MmapedDict = private_mmaped_dict()  # type: ignore[attr-defined]


def _probe(dotted: str) -> object:
    """Read *dotted* on a fresh instance where it is an instance attribute."""
    registry = CollectorRegistry()
    histogram = Histogram("obs_compat_probe", "probe", ["a"], registry=registry)
    owner, _, attribute = dotted.rpartition(".")
    instances: dict[str, object] = {
        "prometheus_client.registry.CollectorRegistry": registry,
        "prometheus_client.metrics.MetricWrapperBase": histogram,
    }
    if owner == "prometheus_client.multiprocess.MultiProcessCollector":
        import tempfile

        from prometheus_client.multiprocess import MultiProcessCollector

        with tempfile.TemporaryDirectory() as path:
            return getattr(MultiProcessCollector(None, path=path), attribute)
    if owner == "prometheus_client.mmap_dict.MmapedDict" and attribute != "_init_value":
        import tempfile

        from prometheus_client.mmap_dict import MmapedDict

        with tempfile.TemporaryDirectory() as path:
            mmaped = MmapedDict(os.path.join(path, "probe.db"))
            try:
                return getattr(mmaped, attribute)
            finally:
                mmaped.close()
    if owner in instances:
        return getattr(instances[owner], attribute)
    import importlib

    module_name, _, rest = dotted.partition(".")
    target: object = importlib.import_module(module_name)
    parts = rest.split(".")
    for index, part in enumerate(parts):
        try:
            target = getattr(target, part)
        except AttributeError:
            target = importlib.import_module(f"{module_name}." + ".".join(parts[: index + 1]))
    return target


def missing_names() -> list[str]:
    """The entries of :data:`PRIVATE_NAMES` that the installed prometheus_client lacks."""
    missing = []
    for dotted, purpose in PRIVATE_NAMES:
        try:
            _probe(dotted)
        except (AttributeError, ImportError):
            missing.append(f"{dotted} (used for {purpose})")
    return missing


def __getattr__(name: str) -> Any:
    # MmapedDict is loaded on first use: a single-process app never imports the mmap machinery
    # through obs.
    if name == "MmapedDict":
        from prometheus_client.mmap_dict import MmapedDict

        return MmapedDict
    raise AttributeError(name)
