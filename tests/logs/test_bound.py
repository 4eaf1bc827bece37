from __future__ import annotations

import asyncio
import io
import json
import logging
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from obs import configure_logging, get_logger
from obs.logs.bound import BAD_ARGS_NOTE
from obs.logs.levels import standard_name


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def configure(stream: io.StringIO, registry: CollectorRegistry, **kw: Any) -> None:
    configure_logging(service_name="svc", log_format="json", stream=stream, registry=registry, **kw)


def test_percent_arguments_are_formatted_as_the_standard_library_does(
    registry: CollectorRegistry,
) -> None:
    out = io.StringIO()
    configure(out, registry)
    log = get_logger("b")
    log.info("hello %s", "world")
    log.info("a %(x)s", {"x": 1})
    log.warning("%d%%", 5)
    assert [line["event"] for line in lines(out)] == ["hello world", "a 1", "5%"]


@pytest.mark.parametrize(
    ("event", "args"),
    [
        ("hello %s %s", ("one",)),  # too few
        ("100% done", ("extra",)),  # a literal % and an argument
        ("%d", ("not a number",)),
        ("%(missing)s", ({"x": 1},)),
        (12345, ("a",)),  # not a string at all
    ],
)
def test_arguments_that_do_not_fit_the_message_are_logged_unformatted(
    registry: CollectorRegistry, event: Any, args: tuple[Any, ...]
) -> None:
    out = io.StringIO()
    configure(out, registry)
    get_logger("b").info(event, *args)  # must not raise
    (line,) = lines(out)
    assert line["event"] == event
    assert line["obs_error"] == BAD_ARGS_NOTE
    assert len(line["positional_args"]) == len(args)


def test_log_takes_any_level_number_and_writes_a_standard_one(
    registry: CollectorRegistry,
) -> None:
    out = io.StringIO()
    configure(out, registry, level="debug")
    log = get_logger("b")
    log.log(35, "custom 35")
    log.log(5, "trace")
    log.log(logging.CRITICAL + 10, "beyond critical")
    log.log("warning", "by name")
    log.log(logging.INFO, "info %s", "formatted")
    assert [(line["event"], line["level"]) for line in lines(out)] == [
        ("custom 35", "warning"),
        ("trace", "debug"),
        ("beyond critical", "critical"),
        ("by name", "warning"),
        ("info formatted", "info"),
    ]


def test_a_call_without_an_event_logs_an_empty_one(registry: CollectorRegistry) -> None:
    out = io.StringIO()
    configure(out, registry)
    log = get_logger("b")
    log.info()
    log.info(event="as keyword")
    log.info("x", self="a field named self")
    assert [line["event"] for line in lines(out)] == ["", "as keyword", "x"]
    assert lines(out)[2]["self"] == "a field named self"


def test_stdlib_custom_levels_are_written_and_counted_as_standard_ones(
    registry: CollectorRegistry,
) -> None:
    out = io.StringIO()
    configure(out, registry, level="debug")
    logging.addLevelName(25, "NOTICE")
    std = logging.getLogger("custom.levels")
    std.setLevel(1)
    std.log(25, "notice")
    std.log(5, "trace")
    std.log(45, "between error and critical")
    assert [line["level"] for line in lines(out)] == ["info", "debug", "error"]
    levels = {
        sample.labels["level"]
        for metric in registry.collect()
        if metric.name == "obs_log_events"
        for sample in metric.samples
    }
    assert levels <= {"debug", "info", "warning", "error", "critical"}


def test_reconfiguring_changes_the_level_of_loggers_already_used(
    registry: CollectorRegistry,
) -> None:
    out = io.StringIO()
    configure(out, registry, level="info")
    log = get_logger("cached")
    log.debug("hidden")
    log.info("shown")
    configure(out, registry, level="debug")
    log.debug("debug now shown")
    assert log.is_enabled_for(logging.DEBUG)
    configure(out, registry, level="error")
    log.warning("hidden again")
    log.log(logging.WARNING, "hidden through log() too")
    log.error("an error")
    assert [line["event"] for line in lines(out)] == ["shown", "debug now shown", "an error"]
    assert log.get_effective_level() == logging.ERROR


def test_async_methods_log_in_the_callers_context(registry: CollectorRegistry) -> None:
    out = io.StringIO()
    configure(out, registry)
    log = get_logger("b")

    async def main() -> None:
        await log.ainfo("async %s", "info")
        await log.adebug("below the level")
        try:
            raise ValueError("boom")
        except ValueError:
            await log.aexception("failed")

    asyncio.run(main())
    first, second = lines(out)
    assert first["event"] == "async info"
    assert second["level"] == "error" and second["exception"][0]["exc_type"] == "ValueError"


@pytest.mark.parametrize(
    ("level", "name"),
    [
        (25, "info"),
        (5, "debug"),
        (0, "debug"),
        (60, "critical"),
        ("WARN", "warning"),
        (None, "info"),
    ],
)
def test_standard_name(level: Any, name: str) -> None:
    assert standard_name(level) == name
