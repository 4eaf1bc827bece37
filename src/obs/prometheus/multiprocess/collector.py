# mypy: disable-error-code="no-untyped-call"
# (prometheus_client's multiprocess helpers carry no annotations)
"""The scrape in multiprocess mode: every worker's values merged, with obs's extras.

Worker ``*.db`` files are merged by prometheus_client; exemplars come from the workers' side
files (latest wins); process and GC metrics are added for every live process, labelled ``pid``,
and the platform's ``python_info`` once.
Set-up, side files and folding live beside it in this package.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Metric
from prometheus_client.core import CounterMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.samples import Exemplar, Sample

from obs.prometheus.multiprocess.exemplars import ExemplarKey, ExemplarValue, merge_exemplars
from obs.prometheus.multiprocess.files import (
    ENV,
    SIDE_PREFIX,
    directory,
    locked,
    pid_of,
    read_side_files,
)


class AggregateCollector:
    """Everything the workers recorded, merged: what any worker's ``/metrics`` serves."""

    def __init__(self, path: str) -> None:
        self.path = path

    def collect(self) -> Iterator[Metric]:
        path = self.path
        with locked(path, exclusive=False):
            metrics = list(MultiProcessCollector.merge(glob.glob(os.path.join(path, "*.db"))))
            sides = read_side_files(glob.glob(os.path.join(path, f"{SIDE_PREFIX}*.json")))
        exemplars = merge_exemplars(sides)
        for metric in metrics:
            if metric.type == "histogram":
                metric.samples = _grouped(metric.samples)
                if exemplars:
                    metric.samples = [
                        _with_exemplar(s, metric.name, exemplars) for s in metric.samples
                    ]
            yield metric
        yield from self._per_process(sides)

    def text_lines(
        self, render_db: Callable[[str, list[str], dict[str, Any]], None]
    ) -> tuple[list[str], list[Metric]]:
        """For the fast scrapes (text, OpenMetrics): the merged ``.db`` values as lines written
        by ``render_db(path, lines, side_files)`` (:mod:`obs.prometheus.multiprocess.merge`),
        and the per-process metrics. The workers' side files are read once, under the same
        shared lock as the ``.db`` files (a fold moves both under the exclusive lock), for the
        exemplars of an OpenMetrics scrape and for the per-process metrics."""
        path = self.path
        lines: list[str] = []
        with locked(path, exclusive=False):
            sides = read_side_files(glob.glob(os.path.join(path, f"{SIDE_PREFIX}*.json")))
            render_db(path, lines, sides)
        return lines, list(self._per_process(sides))

    def _per_process(self, sides: dict[str, Any]) -> Iterator[Metric]:
        path = self.path
        pids = sorted(
            int(pid)
            for side in sides
            if (pid := pid_of(os.path.basename(side))).isdigit() and _alive(int(pid))
        )
        # python_info: the same interpreter in every worker, so once, without a pid.
        yield from _PLATFORM
        yield from _process_metrics(pids)
        yield from _gc_metrics(
            {pid: sides[os.path.join(path, f"{SIDE_PREFIX}{pid}.json")] for pid in pids}
        )


#: ``python_info``, read once: the interpreter does not change while it runs.
_PLATFORM: tuple[Metric, ...] = tuple(PlatformCollector(registry=None).collect())


def _grouped(samples: list[Sample]) -> list[Sample]:
    """A histogram's samples with each label set's buckets, count and sum together.

    prometheus_client's merge (0.23 and older) writes every ``_bucket`` first and the ``_count``
    and ``_sum`` lines after them; OpenMetrics wants each label set in one group, and strict
    parsers (prometheus_client's own before 0.24) refuse the scrape otherwise. A stable sort by
    label set, in order of first appearance, keeps each group's own order.
    """
    first_seen: dict[tuple[tuple[str, str], ...], int] = {}

    def group(sample: Sample) -> int:
        key = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
        return first_seen.setdefault(key, len(first_seen))

    return sorted(samples, key=group)


def _with_exemplar(
    sample: Sample, name: str, exemplars: dict[ExemplarKey, ExemplarValue]
) -> Sample:
    if not sample.name.endswith("_bucket"):
        return sample
    found = exemplars.get((name, tuple(sorted(sample.labels.items()))))
    if found is None:
        return sample
    return sample._replace(exemplar=Exemplar(found[0], found[1], found[2]))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _process_metrics(pids: Sequence[int]) -> Iterator[Metric]:
    families: dict[str, Metric] = {}
    for pid in pids:
        collector = ProcessCollector(pid=lambda pid=pid: pid, registry=None)  # type: ignore[misc]
        for metric in collector.collect():
            family = families.setdefault(
                metric.name, Metric(metric.name, metric.documentation, metric.type)
            )
            family.samples.extend(
                s._replace(labels={**s.labels, "pid": str(pid)}) for s in metric.samples
            )
    yield from families.values()


def _gc_metrics(sides: dict[int, dict[str, Any]]) -> Iterator[Metric]:
    names = (
        ("python_gc_collections", "Number of times this generation was collected", 0),
        ("python_gc_objects_collected", "Objects collected during gc", 1),
        ("python_gc_objects_uncollectable", "Uncollectable objects found during GC", 2),
    )
    for name, help_text, index in names:
        family = CounterMetricFamily(name, help_text, labels=["generation", "pid"])
        for pid, data in sides.items():
            for generation, stats in enumerate(data.get("gc", ())):
                family.add_metric([str(generation), str(pid)], stats[index])
        if family.samples:
            yield family


_registries: dict[str, CollectorRegistry] = {}


def scrape_registry(path: str | None = None) -> CollectorRegistry:
    """A registry whose scrape is the aggregate of all processes writing to *path*."""
    path = path or directory()
    if not path:
        raise ValueError(f"{ENV} is not set: there is nothing to aggregate")
    registry = _registries.get(path)
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(AggregateCollector(path))
        _registries[path] = registry
    return registry
