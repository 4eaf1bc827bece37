from __future__ import annotations

import math
import threading

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from obs.prometheus.families import CounterFamily, GaugeFamily, HistogramFamily


def test_histogram_matches_prometheus_client_exactly() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    buckets = (0.01, 0.1, 1.0)
    family = HistogramFamily("latency_seconds", "Latency.", ["route"], buckets)
    ours.register(family)
    reference = Histogram(
        "latency_seconds", "Latency.", ["route"], registry=theirs, buckets=buckets
    )
    for value in (0.0, 0.01, 0.05, 0.1, 0.5, 1.0, 7.0):
        family.labels("/a").observe(value)
        reference.labels("/a").observe(value)

    def lines(registry: CollectorRegistry) -> list[str]:
        return [
            line for line in generate_latest(registry).decode().splitlines()
            if "_created" not in line
        ]  # fmt: skip

    assert lines(ours) == lines(theirs)


def test_exemplar_latest_wins_per_bucket() -> None:
    family = HistogramFamily("h", "h", ["r"], (1.0,))
    child = family.labels("x")
    child.observe(0.5, {"request_id": "a"})
    child.observe(0.6, {"request_id": "b"})
    child.observe(3.0, {"request_id": "c"})
    (metric,) = family.collect()
    exemplars = {s.labels["le"]: s.exemplar for s in metric.samples if s.name == "h_bucket"}
    assert exemplars["1.0"].labels == {"request_id": "b"} and exemplars["1.0"].value == 0.6
    assert exemplars["+Inf"].labels == {"request_id": "c"}


def test_counter_and_gauge() -> None:
    counter = CounterFamily("events", "Events.", ["level"])
    counter.labels("info").inc()
    counter.labels("info").inc(2)
    with pytest.raises(ValueError, match="only go up"):
        counter.labels("info").inc(-1)
    gauge = GaugeFamily("active", "Active.", ["m"])
    gauge.labels("GET").inc()
    gauge.labels("GET").dec()
    gauge.labels("GET").inc(3)
    (c,) = counter.collect()
    (g,) = gauge.collect()
    assert [(s.name, s.value) for s in c.samples] == [("events_total", 3.0)]
    assert [(s.name, s.value) for s in g.samples] == [("active", 3.0)]


def test_label_count_is_checked() -> None:
    with pytest.raises(ValueError, match="takes labels"):
        GaugeFamily("g", "g", ["a", "b"]).labels("only-one")


def test_no_update_is_lost_across_threads() -> None:
    family = HistogramFamily("h", "h", ["r"], (0.5,))
    gauge = GaugeFamily("g", "g", ["r"])

    def work() -> None:
        child, active = family.labels("x"), gauge.labels("x")
        for _ in range(20_000):
            active.inc()
            child.observe(0.1)
            active.dec()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (metric,) = family.collect()
    count = next(s.value for s in metric.samples if s.name == "h_count")
    assert count == 80_000
    assert next(iter(gauge.collect())).samples[0].value == 0
    assert math.isclose(next(s.value for s in metric.samples if s.name == "h_sum"), 8000.0)


def test_gauge_steps_other_amounts_and_set() -> None:
    gauge = GaugeFamily("g", "g", ["m"])
    child = gauge.labels("x")
    child.dec()  # below zero first: an ordinary decrement
    child.inc(2.5)
    child.inc()
    child.dec(0.5)
    assert child.get() == 2.0  # -1 + 2.5 + 1 - 0.5
    child.set(7)
    assert child.get() == 7
    child.inc()
    (metric,) = gauge.collect()
    assert metric.samples[0].value == 8


def test_a_counters_unit_step_counts_like_inc() -> None:
    family = CounterFamily("lines", "help", ["level"])
    child = family.labels("info")
    step = child.unit_step()
    for _ in range(3):
        step()
    child.inc(2.5)
    assert child.get() == 5.5
    (metric,) = family.collect()
    assert [(s.name, s.value) for s in metric.samples] == [("lines_total", 5.5)]


def test_unit_steps_count_like_inc_and_dec() -> None:
    gauge = GaugeFamily("g", "g", ["m"])
    child = gauge.labels("x")
    up, down = child.unit_steps()
    up()
    up()
    child.inc(0.5)
    down()
    assert child.get() == 1.5
    child.set(3)  # the units are gone: taking one raises, and dec() takes it from the value
    with pytest.raises(IndexError):
        down()
    child.dec()
    assert child.get() == 2


def test_labels_given_as_other_types_are_one_child_with_their_strings() -> None:
    family = CounterFamily("requests", "help", ["status"])
    family.labels(200).inc()
    family.labels(200).inc()
    family.labels("200").inc()
    (metric,) = family.collect()
    assert [(s.labels, s.value) for s in metric.samples] == [({"status": "200"}, 3.0)]
