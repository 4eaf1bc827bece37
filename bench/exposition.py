"""Section 5: time to render ``/metrics`` with 1,250 label sets of the duration histogram.

50 routes x 5 methods x 5 statuses, each label set observed a few times with request-id
exemplars. Single process: plain prometheus_client (its own ``Histogram`` and
``generate_latest``) against obs (its store and :func:`obs.prometheus.exposition.render`), text and
OpenMetrics. Multiprocess: four worker processes write their ``.db`` files under
``PROMETHEUS_MULTIPROC_DIR`` (and their exemplar side files, as at a gunicorn worker's exit),
then one process renders them through prometheus_client's ``MultiProcessCollector`` and through
obs, text and OpenMetrics. The obs output is parsed and compared with what prometheus_client
renders for the same registry: the samples must be the same (in multiprocess OpenMetrics, obs's
exemplars aside, which are compared with obs's own prometheus_client-based path).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.common import Rounds, section_main

ROUTES, METHODS, STATUSES = int(os.environ.get("OBS_BENCH_ROUTES", "50")), ("GET", "POST", "PUT", "DELETE", "PATCH"), (
    "200", "201", "404", "500", "503",
)  # fmt: skip
WORKERS = 4


def label_sets() -> Iterator[tuple[str, str, str, str]]:
    for r in range(ROUTES):
        for method in METHODS:
            for status in STATUSES:
                yield (
                    method,
                    f"/api/v1/resource{r}/{{id}}",
                    status,
                    "" if status < "500" else status,
                )


def populate(child_of: Callable[..., Any], seed: int = 0) -> int:
    count = 0
    for i, labels in enumerate(label_sets()):
        child = child_of(*labels)
        for k in range(3):
            child.observe(0.002 * ((i + k + seed) % 40), {"request_id": f"{i:08x}{k}"})
        count += 1
    return count


def _plain_registry() -> Any:
    from prometheus_client import CollectorRegistry, Histogram

    from obs import metrics

    registry = CollectorRegistry()
    row = metrics.spec(metrics.REQUEST_DURATION)
    histogram = Histogram(
        row.name, row.help, row.labels, registry=registry, buckets=metrics.DURATION_BUCKETS
    )
    populate(histogram.labels)
    return registry


def _obs_registry() -> Any:
    from prometheus_client import CollectorRegistry

    from obs.metrics import get_metrics

    registry = CollectorRegistry()
    populate(get_metrics(registry).request_duration.labels)
    return registry


def _parsed(text: bytes, open_metrics: bool) -> list[Any]:
    if open_metrics:
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
    else:
        from prometheus_client.parser import text_string_to_metric_families
    return sorted(
        (f.name, f.type, sorted(_normalised(s) for s in f.samples))
        for f in text_string_to_metric_families(text.decode())
    )


def _normalised(sample: Any) -> tuple[Any, ...]:
    """A sortable form of a parsed sample: labels (and exemplar labels) as sorted tuples."""
    exemplar = sample.exemplar
    if exemplar is not None:
        exemplar = (sorted(exemplar.labels.items()), exemplar.value, exemplar.timestamp)
    return (sample.name, sorted(sample.labels.items()), sample.value, sample.timestamp, exemplar)


def _render_batch(render: Callable[[], bytes]) -> Callable[[int], float]:
    def batch(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            render()
        return time.perf_counter() - start

    return batch


OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def single_process(rounds: int) -> dict[str, Any]:
    from prometheus_client.exposition import generate_latest
    from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

    from obs.prometheus.exposition import render

    plain, ours = _plain_registry(), _obs_registry()
    batches = {
        "prometheus_client text": _render_batch(lambda: generate_latest(plain)),
        "prometheus_client openmetrics": _render_batch(lambda: generate_openmetrics(plain)),
        "obs text": _render_batch(lambda: render(ours, None)[0]),
        "obs openmetrics": _render_batch(lambda: render(ours, OPENMETRICS)[0]),
    }
    measured = Rounds()
    measured.run(batches, n=1, rounds=rounds, scale=1e3)
    same_text = _parsed(render(ours, None)[0], False) == _parsed(generate_latest(ours), False)
    same_om = _parsed(render(ours, OPENMETRICS)[0], True) == _parsed(
        generate_openmetrics(ours), True
    )
    return {
        "label_sets": ROUTES * len(METHODS) * len(STATUSES),
        "ms": {name: measured.figure(name) for name in batches},
        "same_samples": {"text": same_text, "openmetrics": same_om},
        "bytes": {
            "text": len(render(ours, None)[0]),
            "openmetrics": len(render(ours, OPENMETRICS)[0]),
        },
    }


def _mp_worker(directory: str, seed: int) -> None:
    """One worker process: obs's metrics in multiprocess mode, 1,250 label sets observed."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    from prometheus_client import CollectorRegistry

    from obs.metrics import get_metrics
    from obs.prometheus.multiprocess import write_side_file

    metrics = get_metrics(CollectorRegistry())
    populate(metrics.request_duration.labels, seed)
    metrics.active_requests.labels("GET").inc()
    write_side_file()  # its exemplars, as gunicorn's worker_exit writes them


def _grouped_registry(registry: Any) -> Any:
    """*registry*'s metrics with each histogram label set's samples together, for comparing.

    prometheus_client's multiprocess merge before 0.24 writes every ``_bucket`` first and the
    ``_count`` and ``_sum`` lines after them, which its own OpenMetrics parser refuses ("Invalid
    metric grouping"); the samples, what is compared, are the same. (Its render is timed as it
    is.)
    """
    from prometheus_client import CollectorRegistry

    class Grouped:
        def collect(self) -> Any:
            for metric in registry.collect():
                first_seen: dict[tuple[tuple[str, str], ...], int] = {}
                metric.samples.sort(
                    key=lambda s: first_seen.setdefault(
                        tuple(sorted((k, v) for k, v in s.labels.items() if k != "le")),
                        len(first_seen),
                    )
                )
                yield metric

    grouped = CollectorRegistry(auto_describe=False)
    grouped.register(Grouped())
    return grouped


def _mp_measure(directory: str, rounds: int) -> dict[str, Any]:
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector
    from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

    from obs.prometheus.exposition import render
    from obs.prometheus.multiprocess import scrape_registry

    plain = CollectorRegistry()
    MultiProcessCollector(plain, path=directory)
    ours = scrape_registry(directory)  # what obs's /metrics serves in multiprocess mode
    batches = {
        "prometheus_client text": _render_batch(lambda: generate_latest(plain)),
        "obs text": _render_batch(lambda: render(ours, None)[0]),
        "prometheus_client openmetrics": _render_batch(lambda: generate_openmetrics(plain)),
        "obs openmetrics": _render_batch(lambda: render(ours, OPENMETRICS)[0]),
    }
    # obs adds per-process metrics of live workers (none here); the worker files must match.
    theirs = _parsed(generate_latest(plain), False)
    names = {name for name, _, _ in theirs}
    same = [f for f in _parsed(render(ours, None)[0], False) if f[0] in names] == theirs
    # OpenMetrics: the same samples as prometheus_client's, exemplars aside; with them, the
    # same as obs's aggregate collected and encoded by prometheus_client (the path before the
    # fast merge).
    ours_om = render(ours, OPENMETRICS)[0]
    theirs_om = _parsed(generate_openmetrics(_grouped_registry(plain)), True)
    without_exemplars = [
        (name, kind, [(*s[:-1], None) for s in samples])
        for name, kind, samples in _parsed(ours_om, True)
        if name in names
    ]
    same_om = without_exemplars == theirs_om and _parsed(ours_om, True) == _parsed(
        generate_openmetrics(ours), True
    )
    exemplars = sum(s[-1] is not None for _, _, samples in _parsed(ours_om, True) for s in samples)
    measured = Rounds()
    measured.run(batches, n=1, rounds=rounds, scale=1e3)
    return {
        "workers": WORKERS,
        "label_sets": ROUTES * len(METHODS) * len(STATUSES),
        "ms": {name: measured.figure(name) for name in batches},
        "same_samples": {"text": same, "openmetrics": same_om},
        "exemplars": exemplars,
        "renderer": "obs.prometheus.exposition.render of obs.prometheus.multiprocess.scrape_registry (exemplars, "
        "per-process metrics) vs prometheus_client's MultiProcessCollector",
    }


def multiprocess(rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="obs-bench-mp-") as directory:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": directory}
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "bench.exposition", "--mp-worker", directory, str(seed)],
                env=env,
            )
            for seed in range(WORKERS)
        ]
        for worker in workers:
            if worker.wait(timeout=300) != 0:
                raise RuntimeError("a multiprocess worker failed")
        out = subprocess.run(
            [sys.executable, "-m", "bench.exposition", "--mp-measure", directory, str(rounds)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        )
        result: dict[str, Any] = json.loads(out.stdout)
        result["db_files"] = len(list(Path(directory).glob("*.db")))
        return result


def run(quick: bool) -> dict[str, Any]:
    global ROUTES
    rounds = 2 if quick else 7
    if quick:  # a tenth of the label sets: checks the harness, not the figures
        ROUTES = 5
        os.environ["OBS_BENCH_ROUTES"] = str(ROUTES)
    return {
        "rounds": rounds,
        "single_process": single_process(rounds),
        "multiprocess": multiprocess(rounds),
    }


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--mp-worker":
        _mp_worker(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--mp-measure":
        print(json.dumps(_mp_measure(sys.argv[2], int(sys.argv[3]))))
    else:
        section_main(run)
