from __future__ import annotations

import datetime
from types import SimpleNamespace
from typing import Any

import pytest

from obs.logs.processors import AddStandardFields


def test_timestamps_are_iso_utc_with_microseconds() -> None:
    from prometheus_client import CollectorRegistry

    add = AddStandardFields("svc", CollectorRegistry())
    before = datetime.datetime.now(datetime.UTC)
    first, second = (add(None, "info", {"event": "x"})["timestamp"] for _ in range(2))
    after = datetime.datetime.now(datetime.UTC)
    for value in (first, second):
        assert len(value) == len("2026-01-01T00:00:00.000000Z") and value.endswith("Z")
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        assert before - datetime.timedelta(microseconds=1) <= parsed <= after
    assert first <= second


def test_the_date_part_follows_the_second(monkeypatch: pytest.MonkeyPatch) -> None:
    from prometheus_client import CollectorRegistry

    import obs.logs.processors

    add = AddStandardFields("svc", CollectorRegistry())
    clock = iter([1_767_225_599_999_999_000, 1_767_225_600_000_001_999, 1_767_225_600_500_000_000])
    monkeypatch.setattr(obs.logs.processors, "_time_ns", lambda: next(clock))
    stamps = [add(None, "info", {"event": "x"})["timestamp"] for _ in range(3)]
    assert stamps == [
        "2025-12-31T23:59:59.999999Z",
        "2026-01-01T00:00:00.000001Z",
        "2026-01-01T00:00:00.500000Z",
    ]


def test_standard_fields_keep_what_the_event_already_has() -> None:
    from prometheus_client import CollectorRegistry

    from obs.logs.sink import LineSink  # noqa: F401 - the module must import on its own

    registry = CollectorRegistry()
    add = AddStandardFields("svc", registry)

    class Named:
        name = "from.logger"

    event = add(Named(), "exception", {"event": "x", "service": "other"})
    assert event["level"] == "error" and event["logger"] == "from.logger"
    assert event["service"] == "other"
    kept = add(Named(), "info", {"event": "y", "level": "warning", "logger": "explicit"})
    assert kept["logger"] == "explicit"
    # A field named ``level`` is data: the level comes from the method called.
    assert kept["level"] == "info" and kept["level_field"] == "warning"
    assert registry.get_sample_value("obs_log_events_total", {"level": "error"}) == 1
    assert registry.get_sample_value("obs_log_events_total", {"level": "info"}) == 1
    assert registry.get_sample_value("obs_log_events_total", {"level": "warning"}) is None


def test_render_json_never_fails() -> None:
    import json

    from obs.logs.processors import render_json

    line = render_json(None, "info", {"event": "x", 1: "non-str key", "big": 2**70, "s": "\ud800"})
    assert line.endswith(b"\n")
    assert json.loads(line)["big"] == 2**70


def test_merge_contextvars_matches_structlogs() -> None:
    import structlog

    from obs.logs.processors import merge_contextvars

    structlog.contextvars.bind_contextvars(user="ann", request_id="r-9")
    structlog.contextvars.unbind_contextvars("user")
    structlog.contextvars.bind_contextvars(tenant="t1")
    ours = merge_contextvars(None, "info", {"event": "x", "tenant": "explicit"})
    theirs = structlog.contextvars.merge_contextvars(
        None, "info", {"event": "x", "tenant": "explicit"}
    )
    assert ours == theirs == {"event": "x", "tenant": "explicit", "request_id": "r-9"}
    structlog.contextvars.clear_contextvars()


def test_merge_contextvars_sees_keys_bound_for_the_first_time_after_a_merge() -> None:
    import uuid

    import structlog

    from obs.logs.processors import merge_contextvars

    new_key = f"key_{uuid.uuid4().hex}"  # a variable structlog has never made in this process
    assert new_key not in merge_contextvars(None, "info", {"event": "before"})
    structlog.contextvars.bind_contextvars(**{new_key: 7})
    try:
        assert merge_contextvars(None, "info", {"event": "after"})[new_key] == 7
    finally:
        structlog.contextvars.clear_contextvars()


def _raised() -> BaseException:
    try:
        raise ValueError("boom")
    except ValueError as exc:
        return exc


def test_the_fused_json_line_is_the_chain_byte_for_byte(monkeypatch: pytest.MonkeyPatch) -> None:
    import structlog
    from prometheus_client import CollectorRegistry

    from obs.config import Settings
    from obs.logs import processors
    from obs.logs.pipeline import build_processors

    monkeypatch.setattr(processors, "_time_ns", lambda: 1_790_000_000_123_456_789)
    chain, fused = build_processors(Settings.from_env(service_name="svc"), json=True,
                                    registry=CollectorRegistry())  # fmt: skip
    assert fused is not None
    trusted = frozenset({"event", "status", "exc_info", "request_id"})
    error = _raised()
    events: list[dict[str, Any]] = [
        {"event": "request", "status": 200},
        {"event": "request", "status": 500, "exc_info": error},
        {"event": "request", "status": 200, "password": "hunter2", "nested": {"token": "t"}},
        {"event": "request", "status": 200, "level": "warning", "big": 2**70},
    ]
    structlog.contextvars.bind_contextvars(request_id="r-1", user="ann", api_key="k")
    try:
        for event in events:
            generic: Any = dict(event)
            for processor in chain:
                generic = processor(SimpleNamespace(name="obs.access"), "info", generic)
            line = fused.render("obs.access", "info", dict(event), trusted)
            assert line == generic
            assert b"hunter2" not in line and b'"k"' not in line and b'"t"' not in line
    finally:
        structlog.contextvars.clear_contextvars()


def test_only_the_json_chain_is_fused() -> None:
    from prometheus_client import CollectorRegistry

    from obs.config import Settings
    from obs.logs.pipeline import build_processors

    _, console = build_processors(Settings.from_env(), json=False, registry=CollectorRegistry())
    assert console is None
    chain, fused = build_processors(Settings.from_env(), json=True, registry=CollectorRegistry())
    assert fused is not None
    # The fused line is built from the chain's own processor objects, not copies of them.
    assert (
        fused._standard is chain[2] and fused._exceptions is chain[3] and fused._redact is chain[4]
    )
