"""A lean in-process metric store for the per-request hot path.

prometheus_client's metrics take a lock per value and validate every exemplar, which costs a
couple of microseconds per request. These families keep plain numbers under one lock per family
and register with a prometheus_client registry as ordinary collectors, so exposition, the
default collectors and every other metric of the app keep working as before.

Each family's :meth:`labels` returns a cached child with the same methods as prometheus_client's
children (``observe(value, exemplar)``, ``inc()``, ``dec()``), so callers cannot tell them apart;
in multiprocess mode :mod:`obs.metrics` uses prometheus_client's own classes instead.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from types import TracebackType
from typing import Any, Protocol

from prometheus_client import Metric
from prometheus_client.samples import Exemplar, Sample


def format_bound(bound: float) -> str:
    """A bucket bound as the ``le`` label writes it."""
    return "+Inf" if bound == math.inf else repr(float(bound))


class Lock(Protocol):
    """A ``threading.Lock`` or ``threading.RLock``."""

    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...

    def release(self) -> None: ...

    def __enter__(self) -> bool: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class Family:
    """Common parts: a name, labels, and children cached by label values.

    *reentrant* families take a ``threading.RLock``: one a log call counts in
    (``obs_log_events_total``) can be counted in again by a signal handler that logs while the
    thread it interrupted holds the lock, where a plain lock would wait forever.
    """

    kind = "untyped"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        *,
        reentrant: bool = False,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._lock: Lock = threading.RLock() if reentrant else threading.Lock()
        self._children: dict[tuple[str, ...], _Child] = {}

    def labels(self, *values: object) -> _Child:
        """The child for *values* (created on first use); values are labelled as ``str()``
        gives them, so ``labels(200)`` and ``labels("200")`` are one child."""
        child = self._children.get(values)  # type: ignore[arg-type]
        if child is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")
            key = tuple(str(v) for v in values)
            with self._lock:
                child = self._children.get(key)
                if child is None:
                    child = self._children[key] = self._new_child()
        return child

    def _new_child(self) -> _Child:
        raise NotImplementedError

    def remove(self, *values: str) -> None:
        """Drop the label set *values* (as ``prometheus_client``'s ``remove``); absent is fine."""
        with self._lock:
            self._children.pop(tuple(values), None)

    def children(self) -> list[tuple[tuple[str, ...], _Child]]:
        """The label values and child of every label set, copied under the lock."""
        with self._lock:
            return list(self._children.items())

    def describe(self) -> list[Metric]:
        return [Metric(self.name, self.documentation, self.kind)]

    def collect(self) -> Iterator[Metric]:
        metric = Metric(self.name, self.documentation, self.kind)
        for values, child in self.children():
            labels = dict(zip(self.labelnames, values, strict=True))
            metric.samples.extend(child.samples(self.name, labels))
        yield metric


class _Child:
    __slots__ = ("_lock",)

    def __init__(self, lock: Lock) -> None:
        self._lock = lock

    def samples(self, name: str, labels: dict[str, str]) -> list[Sample]:
        raise NotImplementedError


class _CounterChild(_Child):
    __slots__ = ("_ones", "value")

    def __init__(self, lock: Lock) -> None:
        super().__init__(lock)
        self.value = 0.0
        # Increments of one counted by a C iterator (see unit_step()): next() is one C call,
        # atomic under the GIL, so it needs no lock.
        self._ones = itertools.count()

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("counters only go up; use a gauge for values that go down")
        # acquire/release rather than ``with``: half the cost, and try/finally is free.
        lock = self._lock
        lock.acquire()
        try:
            self.value += amount
        finally:
            lock.release()

    def unit_step(self) -> Callable[[], object]:
        """A C callable that adds one, for a caller that counts once per event (a log line): no
        Python call per step (bench/instructions.py: about 500 instructions per line)."""
        return self._ones.__next__

    def get(self) -> float:
        # count(n) says n, the ones counted so far, without taking one.
        return self.value + int(repr(self._ones)[len("count(") : -1])

    def samples(self, name: str, labels: dict[str, str]) -> list[Sample]:
        return [Sample(name + "_total", labels, self.get())]


class _GaugeChild(_Child):
    __slots__ = ("_units", "value")

    def __init__(self, lock: Lock) -> None:
        super().__init__(lock)
        self.value = 0.0
        # Steps of exactly one (requests in flight) are appends and pops: single operations
        # under the GIL, so they need no lock. Other amounts go to ``value``. A deque keeps its
        # block when emptied, where a list frees and reallocates its items on every request
        # that takes it from 0 to 1 and back (bench/instructions.py: about 700-1,000 instructions
        # per request).
        self._units: deque[None] = deque()

    def inc(self, amount: float = 1.0) -> None:
        if amount == 1.0:
            self._units.append(None)
            return
        lock = self._lock
        lock.acquire()
        try:
            self.value += amount
        finally:
            lock.release()

    def unit_steps(self) -> tuple[Callable[[], object], Callable[[], object]]:
        """C callables that add and take one unit (a request in flight), for a caller that
        steps once per request: no Python call per step (bench/instructions.py: about 1,000
        instructions per request for both). Taking raises :class:`IndexError` when no unit is
        left (after :meth:`set`): :meth:`dec` then takes it from the value."""
        return partial(self._units.append, None), self._units.pop

    def dec(self, amount: float = 1.0) -> None:
        if amount == 1.0:
            try:
                self._units.pop()
                return
            except IndexError:  # below the steps counted so far: an ordinary decrement
                pass
        lock = self._lock
        lock.acquire()
        try:
            self.value -= amount
        finally:
            lock.release()

    def set(self, value: float) -> None:
        lock = self._lock
        lock.acquire()
        try:
            self._units.clear()
            self.value = float(value)
        finally:
            lock.release()

    def get(self) -> float:
        return len(self._units) + self.value

    def samples(self, name: str, labels: dict[str, str]) -> list[Sample]:
        return [Sample(name, labels, self.get())]


class _HistogramChild(_Child):
    __slots__ = ("_bounds", "counts", "exemplars", "sum")

    def __init__(self, lock: Lock, bounds: tuple[float, ...]) -> None:
        super().__init__(lock)
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.exemplars: list[tuple[Mapping[str, str], float, float] | None] = [None] * (
            len(bounds) + 1
        )

    def observe(self, value: float, exemplar: Mapping[str, str] | None = None) -> None:
        index = bisect_left(self._bounds, value)
        lock = self._lock
        lock.acquire()
        try:
            self.counts[index] += 1
            self.sum += value
        finally:
            lock.release()
        if exemplar is not None:
            # Latest wins; one list store, atomic under the GIL. Validated when exposed.
            self.exemplars[index] = (exemplar, value, time.time())

    def samples(self, name: str, labels: dict[str, str]) -> list[Sample]:
        with self._lock:
            counts = list(self.counts)
            total = self.sum
        out = []
        cumulative = 0
        bounds = (*self._bounds, math.inf)
        for bound, count, raw in zip(bounds, counts, self.exemplars, strict=True):
            cumulative += count
            exemplar = None if raw is None else Exemplar(dict(raw[0]), raw[1], raw[2])
            bucket_labels = {**labels, "le": format_bound(bound)}
            out.append(Sample(name + "_bucket", bucket_labels, cumulative, None, exemplar))
        out.append(Sample(name + "_count", labels, cumulative))
        out.append(Sample(name + "_sum", labels, total))
        return out


class ScalarFamily(Family):
    """A family whose children hold one number each (counters and gauges)."""

    def snapshot(self) -> list[tuple[tuple[str, ...], float]]:
        """The label values and value of every child, read under the lock."""
        with self._lock:
            return [(values, child.get()) for values, child in self._children.items()]  # type: ignore[attr-defined]


class CounterFamily(ScalarFamily):
    """A counter with labels; exposed with the ``_total`` suffix."""

    kind = "counter"

    def _new_child(self) -> _Child:
        return _CounterChild(self._lock)


class GaugeFamily(ScalarFamily):
    """A gauge with labels."""

    kind = "gauge"

    def _new_child(self) -> _Child:
        return _GaugeChild(self._lock)


class HistogramFamily(Family):
    """A histogram with labels and one exemplar per bucket (the latest)."""

    kind = "histogram"

    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]
    ) -> None:
        super().__init__(name, documentation, labelnames)
        bounds = tuple(sorted(float(b) for b in buckets if b != math.inf))
        if not bounds:
            raise ValueError(f"{name} needs at least one finite bucket bound")
        self.bounds = bounds

    def _new_child(self) -> _Child:
        return _HistogramChild(self._lock, self.bounds)

    def snapshot(
        self,
    ) -> list[tuple[tuple[str, ...], list[int], float, list[tuple[Any, float, float] | None]]]:
        """Label values, bucket counts (not cumulative), sum and exemplars of every child."""
        with self._lock:
            return [
                (values, list(child.counts), child.sum, list(child.exemplars))  # type: ignore[attr-defined]
                for values, child in self._children.items()
            ]
