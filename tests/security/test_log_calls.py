"""A log call never raises into the caller, whatever it is given; the console is escaped."""

from __future__ import annotations

import io
import json
import logging
import re
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY, CollectorRegistry

import obs


class RaisingRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr refused")

    __str__ = __repr__


class RaisingStr(str):
    def __str__(self) -> str:
        raise RuntimeError("str refused")


class Unhashable:
    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("eq refused")


def circular() -> Any:
    loop: dict[str, Any] = {"a": [1]}
    loop["a"].append(loop)
    loop["self"] = loop
    return loop


def deep(depth: int) -> Any:
    value: Any = {"password": "deep-secret"}
    for _ in range(depth):
        value = [value]
    return value


leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=20),
    st.sampled_from(["\ud800", "\x1b[31m", "a=b", "token=x"]),
    st.builds(RaisingRepr),
    st.builds(RaisingStr, st.text(max_size=5)),
    st.builds(Unhashable),
    st.builds(circular),
    st.integers(min_value=0, max_value=3000).map(deep),
)
keys = st.one_of(st.text(max_size=10), st.binary(max_size=10), st.integers(), st.none())
structures = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(keys, children, max_size=4),
        st.frozensets(st.one_of(st.integers(), st.text(max_size=5)), max_size=3),
    ),
    max_leaves=12,
)


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_arbitrary_structures_never_raise_from_a_log_call(fmt: str) -> None:
    registry = CollectorRegistry()
    out = io.StringIO()
    obs.configure_logging(log_format=fmt, stream=out, registry=registry)
    log = structlog.get_logger("fuzz")
    stdlib = logging.getLogger("fuzz.stdlib")

    # Keys the calls below pass themselves are left out: Python refuses a keyword given twice
    # before obs is called at all.
    names = st.text(min_size=1, max_size=8).filter(lambda k: k not in ("event", "exc_info"))

    @settings(
        max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(event=structures, values=st.dictionaries(names, structures))
    def call(event: Any, values: dict[str, Any]) -> None:
        before = out.tell()
        log.info(event, **values)  # never raises
        log.error("with an exception", exc_info=ValueError(RaisingRepr()), **values)
        stdlib.warning("stdlib %s", "x", extra={"payload": event})
        written = out.getvalue()[before:]
        assert written.count("\n") >= 3  # every call wrote its line
        if fmt == "json":
            for line in written.split("\n"):
                if line.startswith("{"):
                    json.loads(line)
        assert "deep-secret" not in written

    call()


def test_what_the_issue_reproduced(registry: CollectorRegistry) -> None:
    out = io.StringIO()
    obs.configure_logging(log_format="json", stream=out, registry=registry)
    log = structlog.get_logger("x")
    log.info("x", headers={b"host": b"x"})
    log.info("x", loop=circular(), bad=RaisingRepr(), nested=deep(5000))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["headers"] == {"host": "x"}
    assert lines[1]["loop"]["self"] == "[circular reference]"
    assert lines[1]["bad"] == "<unrepresentable RaisingRepr>"
    assert "nested deeper than" in json.dumps(lines[1]["nested"])


def test_the_console_escapes_control_characters(registry: CollectorRegistry) -> None:
    out = io.StringIO()
    obs.configure_logging(log_format="console", stream=out, registry=registry)
    structlog.get_logger("x").info(
        "evil\x1b]0;pwned\x07", path="/a\x1b[2J", user_agent="ua\r\nforged"
    )
    text = out.getvalue()
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f]", text), repr(text)
    assert "\\x1b]0;pwned\\x07" in text and "\\x0d\\x0aforged" in text
    assert text.count("\n") == 1  # one line, however many line breaks the values held


def test_a_renderer_failure_is_counted_not_raised(registry: CollectorRegistry) -> None:
    out = io.StringIO()
    obs.configure_logging(log_format="json", stream=out, registry=registry)
    structlog.get_logger("x").info("x", value={"a": RaisingRepr()})
    assert "<unrepresentable RaisingRepr>" in out.getvalue()
    # A dict key the JSON encoder cannot write at all: the line says so, and obs counts it.
    from obs.logs.processors import render_json

    before = internal_errors(REGISTRY, "logging")
    line = render_json(None, "info", {"event": "e", ("tuple", "key"): 1})
    assert json.loads(line)["obs_error"].startswith("the log event could not be rendered")
    assert internal_errors(REGISTRY, "logging") == before + 1


def internal_errors(registry: CollectorRegistry, component: str) -> float:
    return sum(
        s.value
        for metric in registry.collect()
        for s in metric.samples
        if s.name == "obs_internal_errors_total" and s.labels.get("component") == component
    )
