# mypy: disable-error-code="no-untyped-call"
"""Every private name of prometheus_client that obs reads, in one place.

obs's fast exposition and its multiprocess extras need a few internals that prometheus_client
does not export. Each is read here and nowhere else; :data:`PRIVATE_NAMES` lists them so that
``tests/prometheus/test_compat.py`` fails with the symbol and the installed version when a
release renames one.
"""

from __future__ import annotations

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

    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.get_value_class()


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
