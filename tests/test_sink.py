from __future__ import annotations

import io
from typing import Any

import orjson
import pytest

from obs.sink import LineSink


def test_sink_writes_whole_lines_to_a_file_descriptor(tmp_path: Any) -> None:
    path = tmp_path / "log"
    with path.open("w") as stream:
        sink = LineSink(stream)
        sink.write(orjson.dumps({"a": 1}))
        sink.write('{"b": 2}')
    assert path.read_text() == '{"a":1}\n{"b": 2}\n'


def test_sink_failure_is_reported_not_raised(
    capsys: pytest.CaptureFixture[str]
) -> None:
    stream = io.StringIO()
    sink = LineSink(stream)
    stream.close()
    sink.write("lost")
    sink.write("lost again")
    err = capsys.readouterr().err
    assert err.count("obs: log sink failed") == 1
