"""obs's fast renderer writes the same samples as prometheus_client, in both formats."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.openmetrics import exposition as om_exposition
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from obs.metrics import get_metrics
from obs.prometheus import render as _render
from obs.prometheus.exposition import render
from obs.prometheus.families import CounterFamily, GaugeFamily, HistogramFamily
from obs.prometheus.multiprocess import merge as _render_multiprocess


def families(text: bytes, *, open_metrics: bool) -> list[tuple[str, str, str, list[Any]]]:
    parse = parse_openmetrics if open_metrics else parse_text
    return [
        (family.name, family.type, family.documentation, list(family.samples))
        for family in parse(text.decode("utf-8"))
    ]


def assert_same(registry: CollectorRegistry) -> None:
    ours, theirs = _render.render_text(registry), generate_latest(registry)
    assert families(ours, open_metrics=False) == families(theirs, open_metrics=False)
    ours, theirs = _render.render_openmetrics(registry), om_exposition.generate_latest(registry)
    assert families(ours, open_metrics=True) == families(theirs, open_metrics=True)


def populated(registry: CollectorRegistry, routes: int = 5) -> CollectorRegistry:
    metrics = get_metrics(registry)
    for r in range(routes):
        for method in ("GET", "POST"):
            for status in ("200", "404", "500"):
                child = metrics.request_duration.labels(method, f"/items/{r}/{{id}}", status, "")
                for i in range(4):
                    child.observe(0.004 * i + 0.001 * r, {"request_id": f"req-{r}-{i}"})
    metrics.active_requests.labels("GET").inc()
    metrics.active_requests.labels("POST").dec()
    metrics.exceptions.labels("/items/{id}", "ValueError").inc(3)
    metrics.log_events.labels("info").inc()
    metrics.build_info.labels("svc", "1.2.3").set(1)
    return registry


def test_obs_families_render_the_same_samples(registry: CollectorRegistry) -> None:
    assert_same(populated(registry))


def test_exemplars_are_kept_in_openmetrics(registry: CollectorRegistry) -> None:
    populated(registry)
    parsed = families(_render.render_openmetrics(registry), open_metrics=True)
    exemplars = [s.exemplar for _, _, _, samples in parsed for s in samples if s.exemplar]
    assert exemplars
    assert all(e.labels["request_id"].startswith("req-") and e.timestamp for e in exemplars)


def test_text_format_is_byte_identical_with_the_installed_prometheus_client(
    registry: CollectorRegistry,
) -> None:
    populated(registry)
    assert _render.render_text(registry) == generate_latest(registry)
    assert _render.render_openmetrics(registry) == om_exposition.generate_latest(registry)


def test_other_collectors_are_delegated_in_registration_order(registry: CollectorRegistry) -> None:
    Counter("first_things", "Registered before obs.", ["kind"], registry=registry).labels("a").inc()
    populated(registry, routes=2)
    Histogram("plain_seconds", "A prometheus_client histogram.", registry=registry).observe(
        0.2, {"trace_id": "abc"}
    )
    Gauge("plain_gauge", "Docs with a \\ backslash\nand a newline.", registry=registry).set(-2.5)
    Info("plain", "An info metric.", registry=registry).info({"version": "1"})
    registry.set_target_info({"env": "test"})
    assert_same(registry)
    names = [f[0] for f in families(_render.render_text(registry), open_metrics=False)]
    assert names.index("first_things") < names.index("http_server_request_duration_seconds")
    assert names[0] == "target_info"


def test_label_values_are_escaped(registry: CollectorRegistry) -> None:
    metrics = get_metrics(registry)
    awkward = 'a "quoted" \\ back\nslash é ✓'
    metrics.request_duration.labels("GET", awkward, "200", "").observe(0.1, {"request_id": awkward})
    metrics.exceptions.labels(awkward, "KeyError").inc()
    assert_same(registry)


def test_large_and_fractional_values(registry: CollectorRegistry) -> None:
    family = HistogramFamily("big_seconds", "Big.", ["route"], [0.5, 1.0, 1e8])
    registry.register(family)
    child = family.labels("/x")
    for _ in range(1_200_000):
        child.counts[0] += 1  # as if observed, without spending seconds on it
    child.sum = 123456789.125
    gauge = GaugeFamily("odd_gauge", "Odd.", ["k"])
    registry.register(gauge)
    gauge.labels("inf").set(float("inf"))
    gauge.labels("neg").set(-1e-9)
    gauge.labels("big").set(12345678.0)
    counter = CounterFamily("unlabelled_things", "No labels.", [])
    registry.register(counter)
    counter.labels().inc(2.5)
    assert_same(registry)


def test_empty_families_still_have_help_and_type(registry: CollectorRegistry) -> None:
    assert (
        get_metrics(registry).request_duration is not None
    )  # made on first use, with the middleware's buckets
    assert_same(registry)
    text = _render.render_text(registry).decode()
    assert "# TYPE http_server_request_duration_seconds histogram" in text
    assert _render.render_openmetrics(registry).endswith(b"# EOF\n")


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "text/plain",
        "text/plain;version=1.0.0;escaping=allow-utf-8",
        "text/plain;version=1.0.0;escaping=dots",
        "application/openmetrics-text",
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        "application/openmetrics-text;version=1.0.0;escaping=values",
        "application/openmetrics-text;version=0.0.1,text/plain;version=0.0.4;q=0.5",
    ],
)
def test_encode_matches_every_negotiated_encoder(
    registry: CollectorRegistry, accept: str | None
) -> None:
    populated(registry, routes=2)
    encoder, content_type = choose_encoder(accept or "")
    open_metrics = content_type.startswith("application/openmetrics-text")
    ours, theirs = _render.encode(registry, encoder), encoder(registry)
    if "escaping=dots" in content_type or "escaping=values" in content_type:
        # Names are rewritten (and prometheus_client cannot parse its own output): delegated.
        assert ours == theirs
        return
    assert families(ours, open_metrics=open_metrics) == families(theirs, open_metrics=open_metrics)


def test_registry_subclasses_and_custom_encoders_are_delegated(registry: CollectorRegistry) -> None:
    class Custom(CollectorRegistry):
        pass

    custom = populated(Custom())
    assert _render.render_text(custom) == generate_latest(custom)
    populated(registry)
    assert _render.encode(registry, lambda r: b"custom") == b"custom"


def test_render_uses_the_fast_path_and_still_compresses(registry: CollectorRegistry) -> None:
    populated(registry)
    body, headers = render(registry, "application/openmetrics-text", "gzip")
    assert dict(headers)["Content-Encoding"] == "gzip"
    text = gzip.decompress(body)
    assert families(text, open_metrics=True) == families(
        om_exposition.generate_latest(registry), open_metrics=True
    )


label_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)
# Request ids are validated to safe characters; prometheus_client's OpenMetrics parser also
# mis-parses an escaped quote inside an exemplar (its own output included).
request_ids = st.text("abcdefABCDEF0123456789-_.:", min_size=1, max_size=36)


@settings(max_examples=60, deadline=None)
@given(
    observations=st.lists(
        st.tuples(
            st.sampled_from(["GET", "POST", "_OTHER"]),
            label_text,
            st.sampled_from(["200", "404", "500"]),
            st.floats(min_value=0, max_value=1e4, allow_nan=False),
            st.one_of(st.none(), request_ids),
        ),
        max_size=30,
    )
)
def test_any_observations_render_the_same(
    observations: list[tuple[str, str, str, float, str | None]],
) -> None:
    registry = CollectorRegistry()
    metrics = get_metrics(registry)
    for method, route, status, value, request_id in observations:
        exemplar = None if request_id is None else {"request_id": request_id}
        metrics.request_duration.labels(method, route, status, "").observe(value, exemplar)
        metrics.exceptions.labels(route, "E").inc(value)
    assert_same(registry)


MULTIPROCESS_WORKER = """
import os, sys
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
from obs.metrics import get_metrics
seed = int(sys.argv[1])
registry = CollectorRegistry()
metrics = get_metrics(registry)
for r in range(4):
    for status in ("200", "500"):
        child = metrics.request_duration.labels("GET", f"/r{r}/{{id}}", status, "")
        for i in range(3):
            child.observe(0.01 * (i + seed + r))
metrics.active_requests.labels("GET").inc(seed + 1)
metrics.exceptions.labels('/a "b"', "E").inc(seed)
Gauge("per_worker", "All mode.", ["k"], registry=registry, multiprocess_mode="all").labels("x").set(seed)
Gauge("highest", "Max mode.", registry=registry, multiprocess_mode="max").set(seed * 2)
Gauge("lowest", "Min mode.", registry=registry, multiprocess_mode="min").set(seed * 2)
Gauge("latest", "Most recent.", registry=registry, multiprocess_mode="mostrecent").set(seed)
Summary("work_seconds", "A summary.", registry=registry).observe(seed)
Histogram("big", "Big bounds.", registry=registry, buckets=(1e7, 2.5e8)).observe(3e7)
"""


def test_multiprocess_files_render_the_same_samples(tmp_path: Path) -> None:
    directory = tmp_path / "mp"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    for seed in range(3):
        subprocess.run(
            [sys.executable, "-c", MULTIPROCESS_WORKER, str(seed)], env=env, check=True, timeout=60
        )
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    theirs = generate_latest(registry)
    ours = _render.render_text(registry)
    assert ours != theirs  # the fast path ran (lines come in another order)...

    def normalised(text: bytes) -> list[Any]:
        return sorted(
            (name, kind, doc, sorted((s.name, sorted(s.labels.items()), s.value) for s in samples))
            for name, kind, doc, samples in families(text, open_metrics=False)
        )

    assert normalised(ours) == normalised(theirs)  # ...and gives the same samples
    assert _render_multiprocess.render_multiprocess_text(str(directory)) == ours
    # OpenMetrics goes through the fast merge too: the samples of prometheus_client's
    # collector (compared unparsed: its own OpenMetrics of them, every bucket before the first
    # _count, is refused by its parser before 0.24).
    ours = _render.render_openmetrics(registry)
    assert ours != om_exposition.generate_latest(registry) and ours.endswith(b"# EOF\n")
    assert sorted(
        (name, kind, doc, sorted((s.name, sorted(s.labels.items()), s.value) for s in samples))
        for name, kind, doc, samples in families(ours, open_metrics=True)
    ) == sorted(
        (m.name, m.type, m.documentation, sorted((s.name, sorted(s.labels.items()), s.value)
                                                 for s in m.samples))
        for m in registry.collect()
    )  # fmt: skip
