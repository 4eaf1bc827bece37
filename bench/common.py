"""What every section shares: interleaved timing rounds, summaries and the section runner.

A figure is the median of per-round values with the min and max beside it. Variants are run
in interleaved rounds (A, B, C, A, B, C, ...) with the order rotated each round, so a busy
neighbour on the machine slows every variant alike instead of one of them; an overhead is a
variant minus its baseline *in the same round*.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: A timed batch: runs *n* operations and returns the seconds they took.
Batch = Callable[[int], float]


def summary(values: Sequence[float], digits: int = 2) -> dict[str, Any]:
    """Median, min and max of *values*, plus the values themselves."""
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "rounds": [round(v, digits) for v in values],
    }


@dataclass
class Rounds:
    """Per-round figures of several variants, measured in interleaved rounds."""

    per_round: dict[str, list[float]] = field(default_factory=dict)

    def run(self, batches: Mapping[str, Batch], *, n: int, rounds: int, scale: float = 1e6) -> None:
        """Run every batch once per round, rotating the order; store ``seconds / n * scale``."""
        names = list(batches)
        for name in names:  # warm-up: imports, caches, first-use registrations
            batches[name](max(n // 10, 10))
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                gc.collect()
                seconds = batches[name](n)
                self.per_round.setdefault(name, []).append(seconds / n * scale)

    def figure(self, name: str) -> dict[str, Any]:
        return summary(self.per_round[name])

    def overhead(self, name: str, baseline: str) -> dict[str, Any]:
        diffs = [v - b for v, b in zip(self.per_round[name], self.per_round[baseline], strict=True)]
        return summary(diffs)


def median_ci(values: Sequence[float]) -> tuple[float, float, float]:
    """The median of *values* and a 95 % confidence interval for it, from order statistics
    (no assumption about the distribution: on a shared VM rounds have long tails).

    With *n* values the interval runs from the ``n/2 - 0.98 sqrt(n)``-th to the
    ``n/2 + 0.98 sqrt(n) + 1``-th smallest; with five rounds that is the min and the max.
    """
    ordered = sorted(values)
    n = len(ordered)
    half = 0.98 * n**0.5  # 1.96 * sqrt(n) / 2
    low, high = max(int(n / 2 - half), 0), min(int(n / 2 + half + 1), n - 1)
    return statistics.median(ordered), ordered[low], ordered[high]


def timed(loop: Callable[[int], None]) -> Batch:
    """Turn a loop of *n* operations into a :data:`Batch`."""

    def batch(n: int) -> float:
        start = time.perf_counter()
        loop(n)
        return time.perf_counter() - start

    return batch


def missing(module: str) -> str | None:
    """``None`` if *module* imports, else why not (peers are optional with ``--no-install``)."""
    try:
        __import__(module)
    except ImportError as exc:
        return f"{module} not installed ({exc.name})"
    return None


def section_main(run: Callable[[bool], dict[str, Any]]) -> None:
    """``python -m bench.<section> [--quick] [--out FILE]``: run one section, write its JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = run(args.quick)
    text = json.dumps(result, indent=2, sort_keys=True) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
