"""Fast exposition of obs's own metric families; every other collector goes through
prometheus_client.

prometheus_client renders a registry by building a ``Sample`` named tuple per value, a label
dict per sample, and then sorting and escaping every label of every sample again. With a few
hundred routes the duration histogram alone has tens of thousands of samples, and a scrape
costs a worker a good fraction of a second. The families of :mod:`obs.store` hold plain counts
and sums, so this module formats them straight to text: labels are escaped and sorted once per
child, bucket lines share that prefix, and small integer counts skip float formatting.

With ``PROMETHEUS_MULTIPROC_DIR`` set, a ``MultiProcessCollector`` in the registry is read and
merged here too (text format; OpenMetrics scrapes of it go through prometheus_client).

The output is the same as prometheus_client's ``generate_latest`` (text format) and its
OpenMetrics ``generate_latest`` for the same registry, line for line; ``tests/test_render.py``
parses both and compares the samples, exemplars included. Anything this module does not
recognise (other collectors, a registry subclass, an escaping scheme that rewrites names) is
rendered by prometheus_client itself.
"""

from __future__ import annotations

import functools
import glob
import json
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

from prometheus_client import CollectorRegistry, Metric
from prometheus_client.exposition import generate_latest as generate_text
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.utils import floatToGoString
from prometheus_client.validation import _is_valid_legacy_labelname, _is_valid_legacy_metric_name

from obs._aggregate import AggregateCollector
from obs.store import CounterFamily, GaugeFamily, HistogramFamily, _Family, _format_bound

__all__ = ["encode", "render_openmetrics", "render_text"]

Encoder = Callable[[Any], bytes]

# Escaping schemes under which a legacy-valid name is written as it is.
_PLAIN_ESCAPINGS = frozenset({openmetrics.UNDERSCORES, openmetrics.ALLOWUTF8})

_go_float = cast(Callable[[float], str], floatToGoString)

# Integers below this print as "<n>.0" in Go's float format; from 1e6 on Go uses exponents.
_SMALL_INT = 1_000_000


def _number(value: float) -> str:
    """``floatToGoString``, with a fast path for the small whole numbers that counts are."""
    if value.__class__ is int and 0 <= value < _SMALL_INT:
        return f"{value}.0"
    return _go_float(value)


def _escape_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _help_text(documentation: str) -> str:
    return documentation.replace("\\", r"\\").replace("\n", r"\n")


def _help_openmetrics(documentation: str) -> str:
    return _escape_value(documentation)


def _plain_names(family: _Family) -> bool:
    return _is_valid_legacy_metric_name(family.name) and all(
        _is_valid_legacy_labelname(name) for name in family.labelnames
    )


class _Collected:
    """Adapts a list of already collected metrics to prometheus_client's encoders."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


def _label_pairs(names: Iterable[str], values: Iterable[str]) -> list[tuple[str, str]]:
    return sorted(zip(names, values, strict=True))


def _joined(pairs: list[tuple[str, str]]) -> str:
    return ",".join(f'{name}="{_escape_value(value)}"' for name, value in pairs)


def _histogram_lines(family: HistogramFamily, out: list[str], *, exemplars: bool) -> None:
    name = family.name
    bucket, count_name, sum_name = name + "_bucket", name + "_count", name + "_sum"
    bounds = [*(_format_bound(b) for b in family.bounds), "+Inf"]
    labelnames = family.labelnames
    # Where ``le`` falls among the sorted label names, so each child sorts its labels once.
    le_at = sum(1 for label in labelnames if label < "le")
    with family._lock:
        children = [
            (values, list(child.counts), child.sum, list(child.exemplars))  # type: ignore[attr-defined]
            for values, child in family._children.items()
        ]
    for values, counts, total, raw_exemplars in children:
        pairs = _label_pairs(labelnames, values)
        before = ",".join(f'{k}="{_escape_value(v)}"' for k, v in pairs[:le_at])
        after = ",".join(f'{k}="{_escape_value(v)}"' for k, v in pairs[le_at:])
        head = f"{bucket}{{{before}," if before else f"{bucket}{{"
        tail = '"} ' if not after else f'",{after}}} '
        cumulative = 0
        for bound, count, raw in zip(bounds, counts, raw_exemplars, strict=True):
            cumulative += count
            line = f'{head}le="{bound}{tail}{_number(cumulative)}'
            if exemplars and raw is not None:
                line += _exemplar(raw)
            out.append(line + "\n")
        labels = f"{{{_joined(pairs)}}}" if pairs else ""
        out.append(f"{count_name}{labels} {_number(cumulative)}\n")
        out.append(f"{sum_name}{labels} {_number(total)}\n")


def _exemplar(raw: tuple[Any, float, float]) -> str:
    labels, value, timestamp = raw
    joined = ",".join(f'{k}="{_escape_value(v)}"' for k, v in sorted(labels.items()))
    return f" # {{{joined}}} {_go_float(value)} {timestamp}"


def _scalar_lines(family: _Family, sample_name: str, out: list[str]) -> None:
    labelnames = family.labelnames
    with family._lock:
        children = [(values, child.get()) for values, child in family._children.items()]  # type: ignore[attr-defined]
    for values, value in children:
        pairs = _label_pairs(labelnames, values)
        labels = f"{{{_joined(pairs)}}}" if pairs else ""
        out.append(f"{sample_name}{labels} {_number(value)}\n")


def _family_lines(family: _Family, out: list[str], *, open_metrics: bool) -> None:
    name = family.name
    if isinstance(family, CounterFamily):
        exposed, kind = (name if open_metrics else name + "_total"), "counter"
    elif isinstance(family, GaugeFamily):
        exposed, kind = name, "gauge"
    else:
        exposed, kind = name, "histogram"
    doc = family.documentation
    out.append(f"# HELP {exposed} {_help_openmetrics(doc) if open_metrics else _help_text(doc)}\n")
    out.append(f"# TYPE {exposed} {kind}\n")
    if isinstance(family, HistogramFamily):
        _histogram_lines(family, out, exemplars=open_metrics)
    elif isinstance(family, CounterFamily):
        _scalar_lines(family, name + "_total", out)
    else:
        _scalar_lines(family, name, out)


def _is_fast(family: _Family) -> bool:
    return type(family) in (CounterFamily, GaugeFamily, HistogramFamily) and _plain_names(family)


def _render(registry: CollectorRegistry, delegate: Encoder, *, open_metrics: bool) -> bytes:
    with registry._lock:
        collectors = list(registry._collector_to_names)
        target_info: Metric | None = None
        if registry._target_info:
            target_info = registry._target_info_metric()  # type: ignore[no-untyped-call]
    out: list[str] = []
    pending: list[Metric] = [target_info] if target_info is not None else []

    def flush() -> None:
        if pending:
            text = delegate(_Collected(pending)).decode("utf-8")
            if open_metrics:
                text = text.removesuffix("# EOF\n")
            out.append(text)
            pending.clear()

    for collector in collectors:
        if isinstance(collector, _Family) and _is_fast(collector):
            flush()
            _family_lines(collector, out, open_metrics=open_metrics)
        elif type(collector) is MultiProcessCollector and not open_metrics:
            flush()
            _multiprocess_lines(collector._path, out)
        elif type(collector) is AggregateCollector and not open_metrics:
            flush()
            lines, per_process = collector.text_lines(_multiprocess_lines)
            out.extend(lines)
            pending.extend(per_process)
        else:
            pending.extend(collector.collect())
    flush()
    if open_metrics:
        out.append("# EOF\n")
    return "".join(out).encode("utf-8")


def render_text(registry: CollectorRegistry, escaping: str = openmetrics.UNDERSCORES) -> bytes:
    """The Prometheus text format (0.0.4) of *registry*, as ``generate_latest`` writes it."""
    delegate: Encoder = functools.partial(generate_text, escaping=escaping)
    if type(registry) is not CollectorRegistry or escaping not in _PLAIN_ESCAPINGS:
        return delegate(registry)
    return _render(registry, delegate, open_metrics=False)


def render_openmetrics(
    registry: CollectorRegistry, escaping: str = openmetrics.UNDERSCORES, version: str = "1.0.0"
) -> bytes:
    """The OpenMetrics text of *registry* with exemplars, as prometheus_client writes it."""
    delegate: Encoder = functools.partial(
        openmetrics.generate_latest, escaping=escaping, version=version
    )
    if type(registry) is not CollectorRegistry or escaping not in _PLAIN_ESCAPINGS:
        return delegate(registry)
    return _render(registry, delegate, open_metrics=True)


def encode(registry: Any, encoder: Encoder) -> bytes:
    """Render *registry* the way *encoder* (from prometheus_client's ``choose_encoder``) would,
    through the fast path when the encoder is one of prometheus_client's two."""
    func = getattr(encoder, "func", encoder)
    keywords: dict[str, Any] = getattr(encoder, "keywords", {})
    escaping = keywords.get("escaping", openmetrics.UNDERSCORES)
    if func is generate_text and set(keywords) <= {"escaping"}:
        return render_text(registry, escaping)
    if func is openmetrics.generate_latest and set(keywords) <= {"escaping", "version"}:
        return render_openmetrics(registry, escaping, keywords.get("version", "1.0.0"))
    body: bytes = encoder(registry)
    return body



# -- multiprocess -------------------------------------------------------------------------------
#
# prometheus_client's MultiProcessCollector parses every key of every worker's file, builds a
# Sample per value, merges them through nested defaultdicts and formats the result like any other
# metric. Here each distinct key is parsed once per process (keys repeat in every worker's file
# and from scrape to scrape), values are merged into flat dicts, and lines are formatted from
# labels that are already sorted. The merge rules are prometheus_client's: counters, summaries
# and histogram sums add up; buckets add up and accumulate by bound, ``_count`` being the total;
# gauges follow their multiprocess mode (``all``/``liveall`` keep a ``pid`` label).

#: Parsed keys: key -> (metric name, sample name, sorted labels, help). Bounded: cleared when full.
_KEYS: dict[str, tuple[str, str, tuple[tuple[str, str], ...], str]] = {}
_MAX_KEYS = 200_000
_GAUGE_MODES = {
    "min": "min", "livemin": "min", "max": "max", "livemax": "max", "sum": "sum",
    "livesum": "sum", "mostrecent": "mostrecent", "livemostrecent": "mostrecent",
}  # fmt: skip


def _parse_key(key: str) -> tuple[str, str, tuple[tuple[str, str], ...], str]:
    parsed = _KEYS.get(key)
    if parsed is None:
        metric_name, name, labels, help_text = json.loads(key)
        parsed = (metric_name, name, tuple(sorted(labels.items())), help_text)
        if len(_KEYS) >= _MAX_KEYS:
            _KEYS.clear()
        _KEYS[key] = parsed
    return parsed


class _Merged:
    """One metric merged across the files of all workers."""

    __slots__ = ("buckets", "help", "kind", "mode", "timestamps", "values")

    def __init__(self, kind: str, help_text: str) -> None:
        self.kind = kind
        self.help = help_text
        self.mode = ""
        # (sample name, labels) -> value; buckets: labels without le -> {bound: value}
        self.values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.buckets: dict[tuple[tuple[str, str], ...], dict[float, float]] = {}
        self.timestamps: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}


def _merge_files(files: Iterable[str]) -> dict[str, _Merged]:
    from prometheus_client.mmap_dict import MmapedDict

    merged: dict[str, _Merged] = {}
    # Counters, summaries and histograms add up across workers: sum by raw key first (the
    # inner loop is one dict update per value), then parse each distinct key once.
    sums: dict[str, dict[str, float]] = {}
    for path in files:
        parts = os.path.basename(path).split("_")
        kind = parts[0]
        try:
            entries = MmapedDict.read_all_values_from_file(path)  # type: ignore[no-untyped-call]
        except FileNotFoundError:
            if kind == "gauge" and parts[1].startswith("live"):
                continue  # a worker marked dead between the listing and now
            raise
        if kind != "gauge":
            acc = sums.setdefault(kind, {})
            get = acc.get
            for key, value, _, _ in entries:
                acc[key] = get(key, 0.0) + value
            continue
        mode, pid = _GAUGE_MODES.get(parts[1], "all"), parts[2][:-3]
        for key, value, timestamp, _ in entries:
            metric_name, name, labels, help_text = _parse_key(key)
            metric = merged.get(metric_name)
            if metric is None:
                metric = merged[metric_name] = _Merged(kind, help_text)
            metric.mode = mode
            _merge_gauge(metric, mode, (name, labels), pid, value, timestamp)
    for kind, acc in sums.items():
        for key, value in acc.items():
            metric_name, name, labels, help_text = _parse_key(key)
            metric = merged.get(metric_name)
            if metric is None:
                metric = merged[metric_name] = _Merged(kind, help_text)
            if kind == "histogram" and name.endswith("_bucket"):
                bound, rest = _bucket_of(key, labels)
                by_bound = metric.buckets.setdefault(rest, {})
                by_bound[bound] = by_bound.get(bound, 0.0) + value
                metric.values.setdefault((metric_name + "_count", rest), 0.0)
            else:
                metric.values[(name, labels)] = metric.values.get((name, labels), 0.0) + value
    return merged


_BUCKETS: dict[str, tuple[float, tuple[tuple[str, str], ...]]] = {}


def _bucket_of(
    key: str, labels: tuple[tuple[str, str], ...]
) -> tuple[float, tuple[tuple[str, str], ...]]:
    """The bound and the other labels of a bucket key, parsed once per key."""
    found = _BUCKETS.get(key)
    if found is None:
        bound = float(dict(labels)["le"])
        found = (bound, tuple(pair for pair in labels if pair[0] != "le"))
        if len(_BUCKETS) >= _MAX_KEYS:
            _BUCKETS.clear()
        _BUCKETS[key] = found
    return found


def _merge_gauge(
    metric: _Merged,
    mode: str,
    sample: tuple[str, tuple[tuple[str, str], ...]],
    pid: str,
    value: float,
    timestamp: float,
) -> None:
    values = metric.values
    if mode == "all":
        name, labels = sample
        values[(name, tuple(sorted((*labels, ("pid", pid)))))] = value
    elif mode == "sum":
        values[sample] = values.get(sample, 0.0) + value
    elif mode == "min":
        values[sample] = min(values.get(sample, value), value)
    elif mode == "max":
        values[sample] = max(values.get(sample, value), value)
    else:  # most recent
        if metric.timestamps.get(sample, 0.0) < float(timestamp or 0):
            values[sample] = value
            metric.timestamps[sample] = float(timestamp or 0)


def _labels_text(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape_value(v)}"' for k, v in labels) + "}"


def _multiprocess_lines(directory: str, out: list[str]) -> None:
    """The text format of every metric in *directory*'s ``.db`` files."""
    merged = _merge_files(glob.glob(os.path.join(directory, "*.db")))
    for metric_name, metric in merged.items():
        kind = metric.kind
        exposed = metric_name + "_total" if kind == "counter" else metric_name
        out.append(f"# HELP {exposed} {_help_text(metric.help)}\n")
        out.append(f"# TYPE {exposed} {kind}\n")
        counts: dict[tuple[tuple[str, str], ...], float] = {}
        bucket = metric_name + "_bucket"
        for labels, by_bound in metric.buckets.items():
            le_at = sum(1 for k, _ in labels if k < "le")
            before = ",".join(f'{k}="{_escape_value(v)}"' for k, v in labels[:le_at])
            after = ",".join(f'{k}="{_escape_value(v)}"' for k, v in labels[le_at:])
            head = f"{bucket}{{{before}," if before else f"{bucket}{{"
            tail = '"} ' if not after else f'",{after}}} '
            total = 0.0
            for bound in sorted(by_bound):
                total += by_bound[bound]
                out.append(f'{head}le="{_go_float(bound)}{tail}{_go_float(total)}\n')
            counts[labels] = total
        for (name, labels), value in metric.values.items():
            if kind == "histogram" and name == metric_name + "_count":
                value = counts.get(labels, value)
            out.append(f"{name}{_labels_text(labels)} {_go_float(value)}\n")


def render_multiprocess_text(directory: str) -> bytes:
    """The text format of the ``.db`` files in *directory*, as ``MultiProcessCollector``
    rendered by ``generate_latest`` gives it (same samples; lines may come in another order)."""
    out: list[str] = []
    _multiprocess_lines(directory, out)
    return "".join(out).encode("utf-8")
