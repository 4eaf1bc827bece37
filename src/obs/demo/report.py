"""What the demo shows: a RED table from the service's own ``/metrics``, the slowest requests
with their log lines, and the exemplar that links a latency bucket to a request id."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.openmetrics.parser import text_string_to_metric_families

from obs.metrics import METHOD, REQUEST_DURATION, ROUTE, STATUS


@dataclass
class RouteStats:
    """RED figures of one route, from the duration histogram."""

    route: str
    count: float
    errors: float
    buckets: list[tuple[float, float]]  # (upper bound, cumulative count), summed over labels

    def quantile(self, q: float) -> float:
        """Like PromQL's ``histogram_quantile``: linear interpolation inside the bucket."""
        if self.count == 0:
            return math.nan
        rank = q * self.count
        previous_bound, previous_count = 0.0, 0.0
        for bound, cumulative in self.buckets:
            if cumulative >= rank:
                if math.isinf(bound):
                    return previous_bound
                span = cumulative - previous_count
                fraction = 0.0 if span == 0 else (rank - previous_count) / span
                return previous_bound + (bound - previous_bound) * fraction
            previous_bound, previous_count = bound, cumulative
        return previous_bound


@dataclass
class Exemplar:
    route: str
    upper_bound: float
    value: float
    request_id: str


def parse_openmetrics(text: str) -> tuple[dict[str, RouteStats], list[Exemplar]]:
    """RED figures per route and every exemplar of the duration histogram."""
    counts: dict[str, float] = defaultdict(float)
    errors: dict[str, float] = defaultdict(float)
    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    exemplars: list[Exemplar] = []
    for family in text_string_to_metric_families(text):  # type: ignore[no-untyped-call]
        if family.name != REQUEST_DURATION:
            continue
        for sample in family.samples:
            route = sample.labels[ROUTE]
            if sample.name.endswith("_count"):
                counts[route] += sample.value
                if sample.labels[STATUS].startswith("5"):
                    errors[route] += sample.value
            elif sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                buckets[route][bound] += sample.value
                if sample.exemplar is not None and "request_id" in sample.exemplar.labels:
                    exemplars.append(
                        Exemplar(
                            route,
                            bound,
                            sample.exemplar.value,
                            sample.exemplar.labels["request_id"],
                        )
                    )
    stats = {
        route: RouteStats(route, counts[route], errors[route], sorted(buckets[route].items()))
        for route in counts
    }
    return stats, exemplars


def read_access_lines(path: Path) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Access lines, and every log line grouped by request id."""
    access: list[dict[str, Any]] = []
    by_request: dict[str, list[dict[str, Any]]] = defaultdict(list)
    # "\n" only: str.splitlines() also splits at U+2028, U+0085 and the like, which JSON lines
    # carry unescaped inside strings (a path, a user agent), and the line would be lost.
    for raw in path.read_text(encoding="utf-8", errors="replace").split("\n"):
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        if "request_id" in record:
            by_request[record["request_id"]].append(record)
        if record.get("event") == "request":
            access.append(record)
    return access, by_request


def red_table(stats: dict[str, RouteStats], seconds: float) -> list[str]:
    """The RED table as text lines, busiest route first."""
    rows = [f"{'route':<22} {'req/s':>8} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8}"]
    for route in sorted(stats, key=lambda r: -stats[r].count):
        s = stats[route]
        rows.append(
            f"{route:<22} {s.count / seconds:>8.1f} {100 * s.errors / s.count:>6.1f}%"
            f" {1000 * s.quantile(0.5):>8.1f} {1000 * s.quantile(0.99):>8.1f}"
        )
    return rows


def slowest(access: Iterable[dict[str, Any]], n: int = 5) -> list[dict[str, Any]]:
    return sorted(access, key=lambda r: -float(r.get("duration_ms", 0)))[:n]


def access_line_text(record: dict[str, Any]) -> str:
    return (
        f"{record.get('duration_ms', 0):>8.1f} ms  {record.get('status')}  "
        f"{record.get(METHOD, record.get('http_request_method', ''))} {record.get('path')}  "
        f"request_id={record.get('request_id')}"
    )
