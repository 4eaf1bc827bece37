from __future__ import annotations

import datetime

from obs.processors import UtcTimestamp


def test_timestamps_are_iso_utc_with_microseconds() -> None:
    stamp = UtcTimestamp()
    before = datetime.datetime.now(datetime.UTC)
    first, second = stamp(), stamp()
    after = datetime.datetime.now(datetime.UTC)
    for value in (first, second):
        assert len(value) == len("2026-01-01T00:00:00.000000Z") and value.endswith("Z")
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        assert before - datetime.timedelta(microseconds=1) <= parsed <= after
    assert first <= second


def test_standard_fields_keep_what_the_event_already_has() -> None:
    from prometheus_client import CollectorRegistry

    from obs.processors import AddStandardFields
    from obs.sink import LineSink  # noqa: F401 - the module must import on its own

    registry = CollectorRegistry()
    add = AddStandardFields("svc", registry)

    class Named:
        name = "from.logger"

    event = add(Named(), "exception", {"event": "x", "service": "other"})
    assert event["level"] == "error" and event["logger"] == "from.logger"
    assert event["service"] == "other"
    kept = add(Named(), "info", {"event": "y", "level": "warning", "logger": "explicit"})
    assert kept["level"] == "warning" and kept["logger"] == "explicit"
    assert registry.get_sample_value("obs_log_events_total", {"level": "error"}) == 1
    assert registry.get_sample_value("obs_log_events_total", {"level": "warning"}) == 1


def test_render_json_never_fails() -> None:
    import json

    from obs.processors import render_json

    line = render_json(None, "info", {"event": "x", 1: "non-str key", "big": 2**70, "s": "\ud800"})
    assert line.endswith(b"\n")
    assert json.loads(line)["big"] == 2**70


def test_merge_contextvars_matches_structlogs() -> None:
    import structlog

    from obs.processors import merge_contextvars

    structlog.contextvars.bind_contextvars(user="ann", request_id="r-9")
    structlog.contextvars.unbind_contextvars("user")
    structlog.contextvars.bind_contextvars(tenant="t1")
    ours = merge_contextvars(None, "info", {"event": "x", "tenant": "explicit"})
    theirs = structlog.contextvars.merge_contextvars(None, "info", {"event": "x", "tenant": "explicit"})
    assert ours == theirs == {"event": "x", "tenant": "explicit", "request_id": "r-9"}
    structlog.contextvars.clear_contextvars()


def test_merge_contextvars_sees_keys_bound_for_the_first_time_after_a_merge() -> None:
    import uuid

    import structlog

    from obs.processors import merge_contextvars

    new_key = f"key_{uuid.uuid4().hex}"  # a variable structlog has never made in this process
    assert new_key not in merge_contextvars(None, "info", {"event": "before"})
    structlog.contextvars.bind_contextvars(**{new_key: 7})
    try:
        assert merge_contextvars(None, "info", {"event": "after"})[new_key] == 7
    finally:
        structlog.contextvars.clear_contextvars()
