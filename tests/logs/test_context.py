from __future__ import annotations

import structlog

from obs.logs.context import REQUEST_ID, TRACE_ID, current_request_id


def test_the_variables_are_structlogs() -> None:
    token = REQUEST_ID.set("r-1")
    trace = TRACE_ID.set("t-1")
    try:
        assert structlog.contextvars.get_contextvars() == {"request_id": "r-1", "trace_id": "t-1"}
        assert current_request_id() == "r-1"
    finally:
        TRACE_ID.reset(trace)
        REQUEST_ID.reset(token)
    assert current_request_id() is None
    assert structlog.contextvars.get_contextvars() == {}
