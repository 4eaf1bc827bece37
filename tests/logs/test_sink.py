from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
import threading
from typing import Any

import orjson
import pytest

from obs.logs.sink import LineSink


def test_sink_writes_whole_lines_to_a_file_descriptor(tmp_path: Any) -> None:
    path = tmp_path / "log"
    with path.open("w") as stream:
        sink = LineSink(stream)
        sink.write(orjson.dumps({"a": 1}))
        sink.write('{"b": 2}')
    assert path.read_text() == '{"a":1}\n{"b": 2}\n'


def test_sink_failure_is_reported_not_raised(capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    sink = LineSink(stream)
    stream.close()
    sink.write("lost")
    sink.write("lost again")
    err = capsys.readouterr().err
    assert err.count("obs: log sink failed") == 1


def test_line_buffered_streams_need_no_flush_per_line(tmp_path: Any) -> None:
    path = tmp_path / "log"
    with path.open("w", buffering=1) as stream:
        sink = LineSink(stream)
        assert sink._flush is False
        stream.write("printed\n")  # a line-buffered stream has already written this
        sink.write(b'{"a":1}\n')
    assert path.read_text() == 'printed\n{"a":1}\n'


def test_block_buffered_streams_are_flushed_first(tmp_path: Any) -> None:
    path = tmp_path / "log"
    with path.open("w") as stream:
        sink = LineSink(stream)
        stream.write("printed\n")  # still in the stream's buffer
        sink.write(b'{"a":1}\n')
    assert path.read_text() == 'printed\n{"a":1}\n'


def _in_thread(target: Any, seconds: float = 5.0) -> bool:
    """Run *target* in a daemon thread; whether it finished within *seconds* (a hang fails
    the test instead of hanging the run)."""
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


def test_a_line_written_from_inside_a_write_is_queued_after_it(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A signal handler (or a __del__) that logs runs in the thread that is inside write(),
    # holding the sink's lock: its line must neither wait for that lock nor tear the line.
    path = tmp_path / "log"
    real_write = os.write
    with path.open("w") as stream:
        sink = LineSink(stream)
        interrupted = []

        def write_interrupted_once(fd: int, data: Any) -> int:
            if not interrupted:
                interrupted.append(True)
                sink.write(b'{"inner":1}\n')  # as a signal handler would, mid-write
            return real_write(fd, data)

        monkeypatch.setattr("obs.logs.sink.os.write", write_interrupted_once)
        assert _in_thread(lambda: sink.write(b'{"outer":1}\n')), "the re-entrant write hung"
        assert _in_thread(lambda: sink.write(b'{"next":1}\n'))
    assert path.read_text() == '{"outer":1}\n{"inner":1}\n{"next":1}\n'


_SIGNAL_SCRIPT = """
import faulthandler, signal, sys, time
import obs
out = open(sys.argv[1], "w")
obs.configure_logging(service_name="sig", log_format="json", stream=out)
log = obs.get_logger("sig")
handled = 0
def handler(signum, frame):
    global handled
    handled += 1
    log.info("SIGALRM: reloading config")
signal.signal(signal.SIGALRM, handler)
faulthandler.dump_traceback_later(20, exit=True)
signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)
end = time.monotonic() + 1.5
lines = 0
while time.monotonic() < end:
    log.info("work", i=lines)
    lines += 1
signal.setitimer(signal.ITIMER_REAL, 0)
faulthandler.cancel_dump_traceback_later()
print(handled, lines)
"""


def test_a_signal_handler_that_logs_never_hangs_or_tears_a_line(tmp_path: Any) -> None:
    out = tmp_path / "log"
    script = tmp_path / "signal_logs.py"
    script.write_text(_SIGNAL_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-3000:]
    handled, lines = map(int, done.stdout.split())
    assert handled > 100
    written = out.read_bytes().splitlines()
    assert len(written) == handled + lines
    events = [orjson.loads(line)["event"] for line in written]  # every line whole JSON
    assert events.count("SIGALRM: reloading config") == handled


_FORK_SCRIPT = """
import os, sys, threading, time
from obs.logs.sink import LineSink
sink = LineSink(open(sys.argv[1], "w"))
held, release = threading.Event(), threading.Event()
def hold():  # a thread in the middle of a line when the process forks
    sink._lock.acquire()
    held.set()
    release.wait()
    sink._lock.release()
threading.Thread(target=hold, daemon=True).start()
held.wait()
pid = os.fork()
if pid == 0:
    sink.write(b"child\\n")
    os._exit(0)
deadline = time.monotonic() + 5
while time.monotonic() < deadline:
    if os.waitpid(pid, os.WNOHANG)[0]:
        print("exited")
        break
    time.sleep(0.02)
else:
    os.kill(pid, 9)
    print("hung")
release.set()
"""


def test_a_child_forked_while_another_thread_writes_can_log(tmp_path: Any) -> None:
    out = tmp_path / "log"
    script = tmp_path / "fork_logs.py"
    script.write_text(_FORK_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "exited", done.stderr
    assert out.read_text() == "child\n"


def test_the_line_after_one_a_full_disk_cut_short_starts_on_a_new_line(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "log"
    real_write = os.write
    calls: list[int] = []

    def full_disk(fd: int, data: Any) -> int:
        calls.append(len(data))
        if len(calls) == 1:  # the disk takes part of the first line
            return real_write(fd, bytes(data[:5]))
        if len(calls) <= 3:  # then is full: the rest of it, and the whole second line
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr("obs.logs.sink.os.write", full_disk)
    with path.open("w") as stream:
        sink = LineSink(stream)
        sink.write(b'{"first":1}\n')
        sink.write(b'{"lost":1}\n')
        sink.write(b'{"after":1}\n')  # space came back
    assert path.read_text() == '{"fir\n{"after":1}\n'
    assert "No space left on device" in capsys.readouterr().err
