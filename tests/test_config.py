from __future__ import annotations

import pytest

from obs.config import DEFAULT_REDACT_KEYS, ENVIRONMENT_VARIABLES, Settings
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
