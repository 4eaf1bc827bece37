from __future__ import annotations

import re

import pytest

from obs.config import DEFAULT_REDACT_KEYS, ENVIRONMENT_VARIABLES, Settings, environment_value
from obs.exceptions import ConfigError


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings.service_name == "unknown_service"
    assert settings.log_level == "info"
    assert settings.log_format == "auto"
    assert settings.redact_keys == DEFAULT_REDACT_KEYS


def test_environment_is_read() -> None:
    env = {
        "OBS_SERVICE_NAME": "shop",
        "OBS_LOG_LEVEL": "DEBUG",
        "OBS_LOG_FORMAT": "json",
        "OBS_REDACT_KEYS": "SSN, card-number",
        "OBS_ACCESS_LOG": "off",
        "OBS_ACCESS_LOG_SAMPLE": "0.25",
    }
    settings = Settings.from_env(env)
    assert settings.service_name == "shop"
    assert settings.log_level == "debug"
    assert settings.log_format == "json"
    assert settings.redact_keys == DEFAULT_REDACT_KEYS | {"ssn", "card_number"}  # added
    assert settings.access_log is False
    assert settings.access_log_sample == 0.25


def test_arguments_override_environment() -> None:
    settings = Settings.from_env({"OBS_LOG_FORMAT": "json"}, log_format="console")
    assert settings.log_format == "console"


def test_otel_service_name_is_a_fallback() -> None:
    assert Settings.from_env({"OTEL_SERVICE_NAME": "checkout"}).service_name == "checkout"
    both = {"OTEL_SERVICE_NAME": "checkout", "OBS_SERVICE_NAME": "shop"}
    assert Settings.from_env(both).service_name == "shop"


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        (
            "OBS_LOG_FORMAT",
            "xml",
            "OBS_LOG_FORMAT='xml' is invalid; use one of: json, console, auto.",
        ),
        ("OBS_LOG_LEVEL", "loud", "OBS_LOG_LEVEL='loud' is invalid; use one of: debug, info"),
        ("OBS_ACCESS_LOG", "maybe", "OBS_ACCESS_LOG='maybe' is not a boolean"),
        (
            "OBS_ACCESS_LOG_SAMPLE",
            "2",
            "OBS_ACCESS_LOG_SAMPLE='2' is invalid; use a number from 0 to 1.",
        ),
        ("OBS_SERVICE_NAME", "  ", "OBS_SERVICE_NAME is set but empty"),
    ],
)
def test_invalid_values_name_the_variable(var: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({var: value})
    assert str(info.value).startswith(expected)
    assert "\n" not in str(info.value)


def test_invalid_argument_is_checked_like_the_variable() -> None:
    with pytest.raises(ConfigError, match="log_format \\(argument\\)='yaml' is invalid"):
        Settings.from_env({}, log_format="yaml")


def test_unknown_setting_is_an_error() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.from_env({}, log_fromat="json")


def test_every_field_has_a_variable() -> None:
    assert len(ENVIRONMENT_VARIABLES) == len(Settings.__slots__)  # type: ignore[attr-defined]


def test_warn_and_fatal_are_accepted_as_levels() -> None:
    assert Settings.from_env({"OBS_LOG_LEVEL": "WARN"}).log_level == "warning"
    assert Settings.from_env({"OBS_LOG_LEVEL": "fatal"}).log_level == "critical"


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("OBS_EXCLUDE_PATHS", "metrics", "OBS_EXCLUDE_PATHS: 'metrics' is not a path"),
        ("OBS_METRICS_EXCLUDE_PATHS", "/ok,static/*", "'static/*' is not a path"),
        ("OBS_DURATION_BUCKETS", "0.1,fast", "OBS_DURATION_BUCKETS: 'fast' is not a number"),
        (
            "OBS_DURATION_BUCKETS",
            "1,0.5",
            "OBS_DURATION_BUCKETS=1.0,0.5 is not strictly increasing",
        ),
        ("OBS_REQUEST_ID_HEADER", "X Request", "OBS_REQUEST_ID_HEADER='X Request' is not an HTTP"),
    ],
)
def test_new_variables_are_validated(var: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(expected)):
        Settings.from_env({var: value})


def test_new_variables_are_read() -> None:
    env = {
        "OBS_METRICS_EXCLUDE_PATHS": "/metrics, /static/*",
        "OBS_DURATION_BUCKETS": "0.05,0.5,5,+Inf",
        "OBS_REQUEST_ID_HEADER": "X-Correlation-ID",
    }
    settings = Settings.from_env(env)
    assert settings.metrics_exclude_paths == ("/metrics", "/static/*")
    assert settings.duration_buckets == (0.05, 0.5, 5.0)
    assert settings.request_id_header == "X-Correlation-ID"
    assert Settings.from_env({}).metrics_exclude_paths == ("/metrics",)


def test_an_invalid_process_environment_exits_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OBS_ACCESS_LOG", "perhaps")
    with pytest.raises(SystemExit) as info:
        Settings.from_env()
    assert isinstance(info.value, ConfigError)  # `except ConfigError` still catches it
    assert info.value.code == str(info.value).splitlines()[0]
    assert str(info.value).startswith("OBS_ACCESS_LOG='perhaps' is not a boolean")
    # An explicit mapping (tests, tools) and wrong arguments stay ordinary ConfigErrors.
    with pytest.raises(ConfigError) as plain:
        Settings.from_env({"OBS_ACCESS_LOG": "perhaps"})
    assert not isinstance(plain.value, SystemExit)


def test_values_are_written_as_in_the_environment() -> None:
    assert [environment_value(v) for v in (True, False, None, 1.0, 0.25, ("/a", "/b/*"))] == [
        "true", "false", "", "1", "0.25", "/a,/b/*",
    ]  # fmt: skip
    assert environment_value(frozenset({"b", "a"})) == "a,b"
