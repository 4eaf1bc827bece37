from __future__ import annotations

import os
import re

import pytest

from obs.http.ids import (
    MAX_REQUEST_ID_LENGTH,
    is_safe_request_id,
    new_request_id,
    request_id_from,
    trace_id_from_traceparent,
)


def test_new_ids_are_unique_hex() -> None:
    ids = {new_request_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_forked_children_draw_a_new_prefix() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child_id = os.read(read, 64).decode()
    assert child_id[:16] != new_request_id()[:16]


@pytest.mark.parametrize(
    "value",
    [b"abc", b"0f8fad5b-d9cb-469f-a165-70867728950e", b"Root=1-5759e988:x/y+z@h", b"a" * 128],
)
def test_sane_ids_are_kept(value: bytes) -> None:
    assert is_safe_request_id(value)
    assert request_id_from(value) == value.decode()


@pytest.mark.parametrize(
    "value",
    [b"", b"a" * (MAX_REQUEST_ID_LENGTH + 1), b"a b", b"a\r\nb", b"a\x00", b"\xff", b'a"b', b"<x>"],
)
def test_unsafe_ids_are_replaced(value: bytes) -> None:
    assert not is_safe_request_id(value)
    assert re.fullmatch(r"[0-9a-f]{32}", request_id_from(value))


def test_missing_id_is_generated() -> None:
    assert len(request_id_from(None)) == 32


VALID = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (VALID, "4bf92f3577b34da6a3ce929d0e0e4736"),
        (
            b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future",
            "4bf92f3577b34da6a3ce929d0e0e4736",
        ),
        (VALID + b"-extra", None),  # version 00 has exactly four parts
        (b"ff" + VALID[2:], None),
        (VALID.replace(b"4bf9", b"4BF9"), None),  # upper case is invalid
        (b"00-" + b"0" * 32 + b"-00f067aa0ba902b7-01", None),
        (b"00-4bf92f3577b34da6a3ce929d0e0e4736-" + b"0" * 16 + b"-01", None),
        (VALID[:-1], None),
        (b"garbage", None),
        (None, None),
    ],
)
def test_traceparent(header: bytes | None, expected: str | None) -> None:
    assert trace_id_from_traceparent(header) == expected
