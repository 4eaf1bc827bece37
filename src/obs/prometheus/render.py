"""Fast exposition of obs's own metric families; every other collector goes through
prometheus_client.

prometheus_client renders a registry by building a ``Sample`` named tuple per value, a label
dict per sample, and then sorting and escaping every label of every sample again. With a few
hundred routes the duration histogram alone has tens of thousands of samples, and a scrape
costs a worker a good fraction of a second. The families of :mod:`obs.prometheus.families` hold plain counts
and sums, so this module formats them straight to text: labels are escaped and sorted once per
child, bucket lines share that prefix, and small integer counts skip float formatting.

With ``PROMETHEUS_MULTIPROC_DIR`` set, a ``MultiProcessCollector`` (or obs's aggregate) in the
registry is read and merged by :mod:`obs.prometheus.multiprocess.merge`, in both formats; the
OpenMetrics one carries the exemplars of obs's side files.

The output is the same as prometheus_client's ``generate_latest`` (text format) and its
OpenMetrics ``generate_latest`` for the same registry, line for line; ``tests/test_render.py``
parses both and compares the samples, exemplars included. Anything this module does not
recognise (other collectors, a registry subclass, an escaping scheme that rewrites names) is
rendered by prometheus_client itself.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Metric
from prometheus_client.exposition import generate_latest as generate_text
from prometheus_client.openmetrics import exposition as openmetrics

from obs.prometheus import _compat
from obs.prometheus.families import (
    CounterFamily,
    Family,
    GaugeFamily,
    HistogramFamily,
    ScalarFamily,
    format_bound,
)
from obs.prometheus.textformat import escape_value, go_float, help_text, number

__all__ = ["encode", "render_openmetrics", "render_text"]

Encoder = Callable[[Any], bytes]

# Escaping schemes under which a legacy-valid name is written as it is.
_PLAIN_ESCAPINGS = frozenset({openmetrics.UNDERSCORES, openmetrics.ALLOWUTF8})


def _help_openmetrics(documentation: str) -> str:
    return escape_value(documentation)


def _plain_names(family: Family) -> bool:
    return _compat.is_valid_metric_name(family.name) and all(
        _compat.is_valid_label_name(name) for name in family.labelnames
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
    return ",".join(f'{name}="{escape_value(value)}"' for name, value in pairs)


def _histogram_lines(family: HistogramFamily, out: list[str], *, exemplars: bool) -> None:
    name = family.name
    bucket, count_name, sum_name = name + "_bucket", name + "_count", name + "_sum"
    bounds = [*(format_bound(b) for b in family.bounds), "+Inf"]
    labelnames = family.labelnames
    # Where ``le`` falls among the sorted label names, so each child sorts its labels once.
    le_at = sum(1 for label in labelnames if label < "le")
    children = family.snapshot()
    for values, counts, total, raw_exemplars in children:
        pairs = _label_pairs(labelnames, values)
        before = ",".join(f'{k}="{escape_value(v)}"' for k, v in pairs[:le_at])
        after = ",".join(f'{k}="{escape_value(v)}"' for k, v in pairs[le_at:])
        head = f"{bucket}{{{before}," if before else f"{bucket}{{"
        tail = '"} ' if not after else f'",{after}}} '
        cumulative = 0
        for bound, count, raw in zip(bounds, counts, raw_exemplars, strict=True):
            cumulative += count
            line = f'{head}le="{bound}{tail}{number(cumulative)}'
            if exemplars and raw is not None:
                line += _exemplar(raw)
            out.append(line + "\n")
        labels = f"{{{_joined(pairs)}}}" if pairs else ""
        out.append(f"{count_name}{labels} {number(cumulative)}\n")
        out.append(f"{sum_name}{labels} {number(total)}\n")


def _exemplar(raw: tuple[Any, float, float]) -> str:
    labels, value, timestamp = raw
    joined = ",".join(f'{k}="{escape_value(v)}"' for k, v in sorted(labels.items()))
    return f" # {{{joined}}} {go_float(value)} {timestamp}"


def _scalar_lines(family: ScalarFamily, sample_name: str, out: list[str]) -> None:
    labelnames = family.labelnames
    children = family.snapshot()
    for values, value in children:
        pairs = _label_pairs(labelnames, values)
        labels = f"{{{_joined(pairs)}}}" if pairs else ""
        out.append(f"{sample_name}{labels} {number(value)}\n")


def _family_lines(family: Family, out: list[str], *, open_metrics: bool) -> None:
    name = family.name
    if isinstance(family, CounterFamily):
        exposed, kind = (name if open_metrics else name + "_total"), "counter"
    elif isinstance(family, GaugeFamily):
        exposed, kind = name, "gauge"
    else:
        exposed, kind = name, "histogram"
    doc = family.documentation
    out.append(f"# HELP {exposed} {_help_openmetrics(doc) if open_metrics else help_text(doc)}\n")
    out.append(f"# TYPE {exposed} {kind}\n")
    if isinstance(family, HistogramFamily):
        _histogram_lines(family, out, exemplars=open_metrics)
    elif isinstance(family, CounterFamily):
        _scalar_lines(family, name + "_total", out)
    elif isinstance(family, GaugeFamily):
        _scalar_lines(family, name, out)


def _is_fast(family: Family) -> bool:
    return type(family) in (CounterFamily, GaugeFamily, HistogramFamily) and _plain_names(family)


def _render(registry: CollectorRegistry, delegate: Encoder, *, open_metrics: bool) -> bytes:
    collectors, target_info = _compat.registry_collectors(registry)
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
        if isinstance(collector, Family) and _is_fast(collector):
            flush()
            _family_lines(collector, out, open_metrics=open_metrics)
        elif not open_metrics and _is_multiprocess(collector):
            flush()
            pending.extend(_multiprocess_text(collector, out))
        elif _is_multiprocess(collector):
            flush()
            pending.extend(_multiprocess_openmetrics(collector, out))
        else:
            pending.extend(collector.collect())
    flush()
    if open_metrics:
        out.append("# EOF\n")
    return "".join(out).encode("utf-8")


def _is_multiprocess(collector: Any) -> bool:
    """Whether *collector* reads the multiprocess directory (prometheus_client's collector or
    obs's aggregate). Looked up in ``sys.modules``: neither module is imported by a
    single-process app, and a collector of a module never imported cannot be here."""
    name = type(collector).__module__
    if name not in ("prometheus_client.multiprocess", "obs.prometheus.multiprocess.collector"):
        return False
    kind = type(collector).__name__
    return kind in ("MultiProcessCollector", "AggregateCollector") and name in sys.modules


def _multiprocess_text(collector: Any, out: list[str]) -> list[Metric]:
    """Write a multiprocess collector's ``.db`` values to *out* through the fast merge; return
    the metrics it adds that are not in the files (per-process metrics)."""
    from obs.prometheus.multiprocess.merge import multiprocess_lines

    if type(collector).__name__ == "MultiProcessCollector":
        multiprocess_lines(_compat.multiprocess_collector_path(collector), out)
        return []
    lines, per_process = collector.text_lines(
        lambda path, into, _sides: multiprocess_lines(path, into)
    )
    out.extend(lines)
    return list(per_process)


def _multiprocess_openmetrics(collector: Any, out: list[str]) -> list[Metric]:
    """Write a multiprocess collector's ``.db`` values to *out* as OpenMetrics through the fast
    merge, with the exemplars of the workers' side files for obs's aggregate (prometheus_client's
    own collector has none); return the metrics left to prometheus_client's encoder (per-process
    metrics, and any whose names it must escape)."""
    from obs.prometheus.multiprocess.merge import multiprocess_openmetrics_lines

    if type(collector).__name__ == "MultiProcessCollector":
        path = _compat.multiprocess_collector_path(collector)
        return list(multiprocess_openmetrics_lines(path, out))
    from obs.prometheus.multiprocess.exemplars import merge_exemplars

    escaped: list[Metric] = []

    def render_db(path: str, lines: list[str], sides: dict[str, Any]) -> None:
        # The side files the collector read under the same lock as the .db files.
        escaped.extend(multiprocess_openmetrics_lines(path, lines, merge_exemplars(sides)))

    lines, per_process = collector.text_lines(render_db)
    out.extend(lines)
    return [*escaped, *per_process]


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
