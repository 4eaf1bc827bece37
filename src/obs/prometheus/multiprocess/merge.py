"""Multiprocess mode: the ``.db`` files of every worker, merged and written as the text format
or as OpenMetrics (with obs's exemplars).

prometheus_client's MultiProcessCollector parses every key of every worker's file, builds a
Sample per value, merges them through nested defaultdicts and formats the result like any other
metric. Here each distinct key is parsed once per process (keys repeat in every worker's file
and from scrape to scrape), values are merged into flat dicts, and lines are formatted from
labels that are already sorted. The merge rules are prometheus_client's: counters, summaries
and histogram sums add up; buckets add up and accumulate by bound, ``_count`` being the total;
gauges follow their multiprocess mode (``all``/``liveall`` keep a ``pid`` label).

OpenMetrics differs in its details, which are prometheus_client's: a counter's ``# HELP`` and
``# TYPE`` name it without ``_total`` (its samples keep it; the files hold no ``_created``),
help texts escape ``"`` too, and a bucket may carry the exemplar the workers' side files hold
for it. Each histogram label set is one group: buckets, ``_count``, ``_sum``.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable
from typing import Any

from obs.prometheus.textformat import escape_value, go_float, help_text

Labels = tuple[tuple[str, str], ...]
#: An exemplar as the side files keep it: its labels, value and timestamp.
ExemplarValue = tuple[dict[str, str], float, float]
#: The exemplars of the side files (:func:`~obs.prometheus.multiprocess.exemplars.merge_exemplars`),
#: by metric name and labels with ``le``.
Exemplars = dict[tuple[str, Labels], ExemplarValue]
#: The same by metric name and labels without ``le``, then by ``le``.
_ByLabelSet = dict[tuple[str, Labels], dict[str, ExemplarValue]]

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
    from obs.prometheus._compat import MmapedDict

    merged: dict[str, _Merged] = {}
    # Counters, summaries and histograms add up across workers: sum by raw key first (the
    # inner loop is one dict update per value), then parse each distinct key once.
    sums: dict[str, dict[str, float]] = {}
    for path in files:
        parts = os.path.basename(path).split("_")
        kind = parts[0]
        try:
            entries = MmapedDict.read_all_values_from_file(path)
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
    return "{" + ",".join(f'{k}="{escape_value(v)}"' for k, v in labels) + "}"


def multiprocess_lines(directory: str, out: list[str]) -> None:
    """The text format of every metric in *directory*'s ``.db`` files."""
    merged = _merge_files(glob.glob(os.path.join(directory, "*.db")))
    for metric_name, metric in merged.items():
        kind = metric.kind
        exposed = metric_name + "_total" if kind == "counter" else metric_name
        out.append(f"# HELP {exposed} {help_text(metric.help)}\n")
        out.append(f"# TYPE {exposed} {kind}\n")
        _samples(metric_name, metric, out, None)


def multiprocess_openmetrics_lines(
    directory: str, out: list[str], exemplars: Exemplars | None = None
) -> list[Any]:
    """The OpenMetrics lines (without ``# EOF``) of every metric in *directory*'s ``.db`` files,
    as prometheus_client's ``MultiProcessCollector`` and OpenMetrics ``generate_latest`` give
    them, plus *exemplars* on their buckets. Returns, as prometheus_client ``Metric`` objects,
    the metrics whose names that encoder must escape (UTF-8 names), for it to write."""
    from obs.prometheus._compat import is_valid_label_name, is_valid_metric_name

    merged = _merge_files(glob.glob(os.path.join(directory, "*.db")))
    by_label_set = _exemplars_by_label_set(exemplars or {})
    escaped: list[Any] = []
    for metric_name, metric in merged.items():
        names = {name for name, _ in metric.values}
        labelnames = {k for _, labels in metric.values for k, _ in labels}
        labelnames.update(k for labels in metric.buckets for k, _ in labels)
        if not (
            is_valid_metric_name(metric_name)
            and all(is_valid_metric_name(name) for name in names)
            and all(is_valid_label_name(name) for name in labelnames)
        ):
            escaped.append(_as_metric(metric_name, metric, by_label_set))
            continue
        out.append(f"# HELP {metric_name} {escape_value(metric.help)}\n")
        out.append(f"# TYPE {metric_name} {metric.kind}\n")
        _samples(metric_name, metric, out, by_label_set)
    return escaped


def _samples(
    metric_name: str, metric: _Merged, out: list[str], by_label_set: _ByLabelSet | None
) -> None:
    """A merged metric's sample lines, the same in both formats: each histogram label set's
    buckets (with their exemplars from *by_label_set*, OpenMetrics only), then its count and
    sum together, as parsers that check the grouping want (prometheus_client's own before 0.24
    among them); then every other sample."""
    bucket = metric_name + "_bucket"
    count_name, sum_name = metric_name + "_count", metric_name + "_sum"
    written: set[tuple[str, Labels]] = set()
    for labels, by_bound in metric.buckets.items():
        le_at = sum(1 for k, _ in labels if k < "le")
        before = ",".join(f'{k}="{escape_value(v)}"' for k, v in labels[:le_at])
        after = ",".join(f'{k}="{escape_value(v)}"' for k, v in labels[le_at:])
        head = f"{bucket}{{{before}," if before else f"{bucket}{{"
        tail = '"} ' if not after else f'",{after}}} '
        found = None if by_label_set is None else by_label_set.get((metric_name, labels))
        total = 0.0
        for bound in sorted(by_bound):
            total += by_bound[bound]
            le = go_float(bound)
            if found is not None and le in found:
                out.append(f'{head}le="{le}{tail}{go_float(total)}{_exemplar_text(found[le])}\n')
            else:
                out.append(f'{head}le="{le}{tail}{go_float(total)}\n')
        labels_text = _labels_text(labels)
        out.append(f"{count_name}{labels_text} {go_float(total)}\n")
        written.add((count_name, labels))
        total_sum = metric.values.get((sum_name, labels))
        if total_sum is not None:
            out.append(f"{sum_name}{labels_text} {go_float(total_sum)}\n")
            written.add((sum_name, labels))
    for (name, labels), value in metric.values.items():
        if (name, labels) not in written:
            out.append(f"{name}{_labels_text(labels)} {go_float(value)}\n")


def _exemplars_by_label_set(exemplars: Exemplars) -> _ByLabelSet:
    """*exemplars* by metric name and labels without ``le``, then by ``le``: one lookup per
    label set rather than a sorted key per bucket."""
    out: _ByLabelSet = {}
    for (name, labels), value in exemplars.items():
        le = None
        rest = []
        for pair in labels:
            if pair[0] == "le":
                le = pair[1]
            else:
                rest.append(pair)
        if le is not None:
            out.setdefault((name, tuple(rest)), {})[le] = value
    return out


def _exemplar_text(exemplar: ExemplarValue) -> str:
    labels, value, timestamp = exemplar
    joined = ",".join(f'{k}="{escape_value(v)}"' for k, v in sorted(labels.items()))
    return f" # {{{joined}}} {go_float(value)} {timestamp}"


def _as_metric(metric_name: str, metric: _Merged, by_label_set: _ByLabelSet) -> Any:
    """*metric* as prometheus_client's merge gives it, for its encoder to write."""
    from prometheus_client import Metric
    from prometheus_client.samples import Exemplar

    family = Metric(metric_name, metric.help, metric.kind)
    written: set[tuple[str, Labels]] = set()
    for labels, by_bound in metric.buckets.items():
        found = by_label_set.get((metric_name, labels)) or {}
        total = 0.0
        for bound in sorted(by_bound):
            total += by_bound[bound]
            le = go_float(bound)
            exemplar = found.get(le)
            family.add_sample(
                metric_name + "_bucket",
                {**dict(labels), "le": le},
                total,
                exemplar=None if exemplar is None else Exemplar(*exemplar),
            )
        family.add_sample(metric_name + "_count", dict(labels), total)
        written.add((metric_name + "_count", labels))
        total_sum = metric.values.get((metric_name + "_sum", labels))
        if total_sum is not None:
            family.add_sample(metric_name + "_sum", dict(labels), total_sum)
            written.add((metric_name + "_sum", labels))
    for (name, labels), value in metric.values.items():
        if (name, labels) not in written:
            family.add_sample(name, dict(labels), value)
    return family


def render_multiprocess_text(directory: str) -> bytes:
    """The text format of the ``.db`` files in *directory*, as ``MultiProcessCollector``
    rendered by ``generate_latest`` gives it (same samples; lines may come in another order)."""
    out: list[str] = []
    multiprocess_lines(directory, out)
    return "".join(out).encode("utf-8")
