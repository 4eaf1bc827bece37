from __future__ import annotations

import threading
import time

from obs.profiling.threads import ThreadSampler, thread_cpu_time


def busy_thread_function(stop: threading.Event) -> None:
    while not stop.is_set():
        sum(range(1000))


def idle_thread_function(stop: threading.Event) -> None:
    stop.wait()


def test_thread_cpu_time_is_measured() -> None:
    before = thread_cpu_time(threading.get_ident())
    sum(range(200_000))
    after = thread_cpu_time(threading.get_ident())
    assert before is not None and after is not None and after > before


def test_samples_busy_threads_but_not_idle_ones_nor_excluded() -> None:
    stop = threading.Event()
    busy = threading.Thread(target=busy_thread_function, args=(stop,), name="busy")
    idle = threading.Thread(target=idle_thread_function, args=(stop,), name="idle")
    busy.start()
    idle.start()
    sampler = ThreadSampler({threading.get_ident()}, interval=0.002)
    sampler.start()
    try:
        time.sleep(0.3)
    finally:
        records = sampler.stop()
        stop.set()
        busy.join()
        idle.join()
    leaves = [stack[-1] for stack, _ in records]
    roots = {stack[0].split("\x00")[0] for stack, _ in records}
    assert any(leaf.startswith("busy_thread_function\x00") for leaf in leaves)
    assert "idle" not in roots and "MainThread" not in roots
    assert all(elapsed > 0 for _, elapsed in records)


def test_stops_at_its_duration_cap() -> None:
    stop = threading.Event()
    busy = threading.Thread(target=busy_thread_function, args=(stop,))
    busy.start()
    sampler = ThreadSampler(set(), interval=0.002, max_duration=0.05)
    sampler.start()
    time.sleep(0.3)
    records = sampler.stop()
    stop.set()
    busy.join()
    assert sum(elapsed for _, elapsed in records) < 0.1
