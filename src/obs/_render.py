"""Fast exposition of obs's own metric families; every other collector goes through
prometheus_client.

prometheus_client renders a registry by building a ``Sample`` named tuple per value, a label
dict per sample, and then sorting and escaping every label of every sample again. With a few
hundred routes the duration histogram alone has tens of thousands of samples, and a scrape
costs a worker a good fraction of a second. The families of :mod:`obs.store` hold plain counts
and sums, so this module formats them straight to text: labels are escaped and sorted once per
child, bucket lines share that prefix, and small integer counts skip float formatting.

With ``PROMETHEUS_MULTIPROC_DIR`` set, a ``MultiProcessCollector`` in the registry is read and
merged by :mod:`obs._render_multiprocess` (text format; OpenMetrics scrapes of it go through
prometheus_client).

The output is the same as prometheus_client's ``generate_latest`` (text format) and its
OpenMetrics ``generate_latest`` for the same registry, line for line; ``tests/test_render.py``
parses both and compares the samples, exemplars included. Anything this module does not
recognise (other collectors, a registry subclass, an escaping scheme that rewrites names) is
rendered by prometheus_client itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Metric
from prometheus_client.exposition import generate_latest as generate_text
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.validation import _is_valid_legacy_labelname, _is_valid_legacy_metric_name

from obs._aggregate import AggregateCollector
from obs._render_multiprocess import multiprocess_lines
from obs._textformat import escape_value, go_float, help_text, number
from obs.store import CounterFamily, GaugeFamily, HistogramFamily, _Family, _format_bound

__all__ = ["encode", "render_openmetrics", "render_text"]

Encoder = Callable[[Any], bytes]

# Escaping schemes under which a legacy-valid name is written as it is.
_PLAIN_ESCAPINGS = frozenset({openmetrics.UNDERSCORES, openmetrics.ALLOWUTF8})

def _help_openmetrics(documentation: str) -> str:
    return escape_value(documentation)


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
    return ",".join(f'{name}="{escape_value(value)}"' for name, value in pairs)


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


def _scalar_lines(family: _Family, sample_name: str, out: list[str]) -> None:
    labelnames = family.labelnames
    with family._lock:
        children = [(values, child.get()) for values, child in family._children.items()]  # type: ignore[attr-defined]
    for values, value in children:
        pairs = _label_pairs(labelnames, values)
        labels = f"{{{_joined(pairs)}}}" if pairs else ""
        out.append(f"{sample_name}{labels} {number(value)}\n")


def _family_lines(family: _Family, out: list[str], *, open_metrics: bool) -> None:
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
            multiprocess_lines(collector._path, out)
        elif type(collector) is AggregateCollector and not open_metrics:
            flush()
            lines, per_process = collector.text_lines(multiprocess_lines)
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
