"""Request ids and W3C trace context, parsed and made without regular expressions.

An incoming ``X-Request-ID`` is kept when it is a sane token (1-128 characters from a safe set),
because upstream proxies and clients use all kinds of formats; anything else (too long, CR/LF,
NUL, unicode, spaces) is replaced by a fresh id so it never reaches a header or a log line.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable

from obs.selfreport import report_internal_error

MAX_REQUEST_ID_LENGTH = 128

_SAFE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:/+=@"
_HEX = b"0123456789abcdef"


class _IdSource:
    """Unique ids: 64 random bits per process, then a counter.

    Thirty-two hex characters like ``uuid4().hex``, several times cheaper; the random part is
    drawn again in a forked child so that workers never share a prefix.
    """

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self._prefix = os.urandom(8).hex()
        # Counting from 2**64 (plus a random start) makes hex() give "0x1" and then exactly
        # sixteen digits: slicing is cheaper than a format spec on every request.
        start = (1 << 64) | int.from_bytes(os.urandom(3), "big")
        self._next = itertools.count(start).__next__

    def next_id(self) -> str:
        return self._prefix + hex(self._next())[3:]


#: A new unique request id. A bound method rather than a callable instance: Python inlines
#: the call instead of entering a new interpreter frame from C.
new_request_id = _IdSource().next_id


def is_safe_request_id(value: bytes) -> bool:
    """Whether an incoming id may be used as it is."""
    return 0 < len(value) <= MAX_REQUEST_ID_LENGTH and not value.translate(None, _SAFE)


def request_id_from(value: bytes | None) -> str:
    """The incoming id if it is safe, else a new one."""
    if value is not None and is_safe_request_id(value):
        return value.decode("ascii")
    return new_request_id()


def trace_id_from_traceparent(value: bytes | None) -> str | None:
    """The trace id of a valid W3C ``traceparent`` header (version 00 rules), else ``None``.

    Format: ``version-traceid-parentid-flags`` = 2-32-16-2 lower-case hex digits; all-zero ids
    and version ``ff`` are invalid.
    """
    if value is None or len(value) < 55:
        return None
    if value[2:3] != b"-" or value[35:36] != b"-" or value[52:53] != b"-":
        return None
    version, trace_id, parent_id, flags = value[:2], value[3:35], value[36:52], value[53:55]
    if version == b"ff" or (version == b"00" and len(value) != 55):
        return None
    if len(value) > 55 and value[55:56] != b"-":
        return None
    if (version + trace_id + parent_id + flags).translate(None, _HEX):
        return None
    if trace_id == b"0" * 32 or parent_id == b"0" * 16:
        return None
    return trace_id.decode("ascii")


def request_id_maker(generator: Callable[[], str] | None = None) -> Callable[[], str]:
    """What makes a new id: :func:`new_request_id`, or *generator* with obs's rule applied (an
    id that breaks it, or a generator that raises, is reported and replaced by obs's own)."""
    if generator is None:
        return new_request_id

    def new_id() -> str:
        try:
            made = generator()
            if isinstance(made, str) and is_safe_request_id(made.encode("latin-1")):
                return made
            raise ValueError(f"request_id_generator returned {made!r}, not a safe id")
        except Exception as exc:
            report_internal_error("request id generator", exc)
            return new_request_id()

    return new_id


def request_id_reader(
    generator: Callable[[], str] | None = None, validator: Callable[[str], bool] | None = None
) -> Callable[[bytes | None], str]:
    """:func:`request_id_from`, or one that makes ids with *generator* and keeps an incoming id
    only if *validator* accepts it too.

    Decided once, at construction: the default path stays the plain function. obs's own rule
    (1-128 safe characters) always applies first, so a lenient validator can never let CR/LF
    into a header; a generator or validator that raises, or a generator whose id breaks that
    rule, is reported and replaced by obs's own, so it never fails a request.
    """
    if generator is None and validator is None:
        return request_id_from
    new_id = request_id_maker(generator)

    def read(value: bytes | None) -> str:
        if value is not None and is_safe_request_id(value):
            incoming = value.decode("ascii")
            if validator is None:
                return incoming
            try:
                if validator(incoming):
                    return incoming
            except Exception as exc:
                report_internal_error("request id validator", exc)
        return new_id()

    return read
