"""A non-blocking stdout (an event loop's, a supervisor's pipe): whole lines or none, counted."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
from prometheus_client import REGISTRY

from obs.logs import sink as sink_module
from obs.logs.sink import LineSink

DROPPED = "log sink dropped line"  # the obs_internal_errors_total component of dropped lines

WRITERS = 4
LINES = 60


def dropped_lines() -> float:
    return sum(
        s.value
        for metric in REGISTRY.collect()
        for s in metric.samples
        if s.name == "obs_internal_errors_total" and s.labels.get("component") == DROPPED
    )


@pytest.mark.timeout(120)
def test_a_slow_reader_of_a_non_blocking_pipe_never_sees_a_torn_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sink_module, "WAIT_SECONDS", 0.05, raising=False)  # a shorter test
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    stream = os.fdopen(write_end, "w", buffering=1)
    sink = LineSink(stream)
    before = dropped_lines()
    received = bytearray()

    def reader() -> None:
        started = time.monotonic()
        while chunk := os.read(read_end, 4096):
            received.extend(chunk)
            elapsed = time.monotonic() - started
            # Slow throughout, and stalled twice for longer than the sink waits.
            time.sleep(0.3 if 0.5 < elapsed < 0.55 or 1.5 < elapsed < 1.55 else 0.0005)

    def writer(n: int) -> None:
        for i in range(LINES):
            size = (i * 7919 + n * 104729) % 150_000  # lines from empty to over two pipe buffers
            sink.write(json.dumps({"writer": n, "i": i, "pad": "x" * size}))

    reading = threading.Thread(target=reader)
    reading.start()
    writers = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    stream.close()
    reading.join(60)
    os.close(read_end)

    lines = bytes(received).split(b"\n")
    assert lines[-1] == b""
    parsed = [json.loads(line) for line in lines[:-1]]  # 0 torn lines: each one parses
    dropped = dropped_lines() - before
    assert len(parsed) + dropped == WRITERS * LINES  # what is missing was counted
    seen = {(row["writer"], row["i"]) for row in parsed}
    assert len(seen) == len(parsed)  # no line twice


def test_a_line_a_full_pipe_does_not_take_is_dropped_whole_and_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sink_module, "WAIT_SECONDS", 0.05, raising=False)
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    stream = os.fdopen(write_end, "w", buffering=1)
    sink = LineSink(stream)
    filler = b"f" * 1023 + b"\n"
    while True:  # fill the pipe with whole lines, as a stalled reader leaves it
        try:
            os.write(write_end, filler)
        except BlockingIOError:
            break
    before = dropped_lines()
    started = time.monotonic()
    sink.write('{"lost": true}')  # small: the pipe takes all of it or nothing
    assert time.monotonic() - started < 5  # the wait is bounded
    assert dropped_lines() == before + 1
    drained = bytearray()
    os.set_blocking(read_end, False)
    while True:
        try:
            drained.extend(os.read(read_end, 1 << 16))
        except BlockingIOError:
            break
    sink.write('{"next": true}')
    stream.close()
    drained.extend(os.read(read_end, 1 << 16))
    os.close(read_end)
    lines = bytes(drained).split(b"\n")
    assert lines[-2:] == [b'{"next": true}', b""]
    assert set(lines[:-2]) == {filler[:-1]} and b"lost" not in drained
