from __future__ import annotations

import io
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
