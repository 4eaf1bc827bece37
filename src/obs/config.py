"""Settings, read twelve-factor style from ``OBS_*`` environment variables.

Explicit arguments win over the environment, the environment wins over the defaults, and an
invalid value raises :class:`~obs.exceptions.ConfigError` naming the variable and what it allows.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from obs.exceptions import ConfigError

LOG_FORMATS: tuple[str, ...] = ("json", "console", "auto")
LOG_LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error", "critical")

#: Keys whose values never reach a log line (matched case-insensitively, ``-`` equal to ``_``,
#: and as a ``_``-separated suffix, so ``x_api_key`` and ``access_token`` are covered too).
DEFAULT_REDACT_KEYS: frozenset[str] = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "private_key",
        "client_secret",
        "x_obs_profile",
    }
)

#: Paths whose requests are measured but not access-logged by default.
DEFAULT_EXCLUDE_PATHS: tuple[str, ...] = ("/metrics", "/health", "/healthz", "/ready", "/readyz")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; use one of: true, false, 1, 0.")


def _parse_choice(choices: tuple[str, ...]) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ConfigError(f"{name}={raw!r} is invalid; use one of: {', '.join(choices)}.")
        return value

    return parse


def _parse_list(name: str, raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _parse_fraction(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name}={raw!r} is invalid; use a number from 0 to 1.")
    return value


# -- slow-request profiles (issue 20) ---------------------------------------------------------
def _parse_positive(kind: type[int] | type[float]) -> Callable[[str, str], Any]:
    def parse(name: str, raw: str) -> Any:
        try:
            value = kind(raw.strip())
        except ValueError:
            value = 0
        if not value > 0:
            raise ConfigError(f"{name}={raw!r} is invalid; use a number above 0.")
        return value

    return parse


# -- end of slow-request profiles -------------------------------------------------------------


def _parse_text(name: str, raw: str) -> str:
    value = raw.strip()
    if not value:
        raise ConfigError(f"{name} is set but empty; unset it or give it a value.")
    return value


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything obs can be told; build it with :meth:`from_env`."""

    service_name: str = "unknown_service"
    service_version: str = "0.0.0"
    log_level: str = "info"
    log_format: str = "auto"
    redact_keys: frozenset[str] = DEFAULT_REDACT_KEYS
    access_log: bool = True
    exclude_paths: tuple[str, ...] = DEFAULT_EXCLUDE_PATHS
    access_log_sample: float = 1.0
    profile_token: str | None = None
    profile_dir: str = "profiles"
    # slow-request profiles (issue 20): see obs.profiling.slow
    slow_profiles: bool = False
    slow_profile_threshold: float = 1.0
    slow_profile_rate: int = 50
    slow_profile_max_files: int = 100
    slow_profile_max_bytes: int = 50_000_000
    slow_profile_per_minute: int = 10

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``OBS_*`` variables from *environ* (default ``os.environ``).

        Keyword arguments that are not ``None`` override the environment. Unknown keywords are
        a :class:`ConfigError`, so a typo never silently does nothing.
        """
        env = os.environ if environ is None else environ
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(
                f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}."
            )
        values: dict[str, Any] = {}
        for name, (var, parse) in _ENV.items():
            override = overrides.get(name)
            if override is not None:
                values[name] = _validate_override(name, var, override)
            elif (raw := env.get(var)) is not None:
                values[name] = parse(var, raw)
        if "service_name" not in values and (otel := env.get("OTEL_SERVICE_NAME")):
            values["service_name"] = otel.strip()
        if "redact_keys" in values:
            values["redact_keys"] = frozenset(_normalise_key(k) for k in values["redact_keys"])
        return cls(**values)


def _normalise_key(key: str) -> str:
    return key.strip().lower().replace("-", "_")


def _validate_override(name: str, var: str, value: Any) -> Any:
    """Check an explicit argument the same way its environment variable would be checked."""
    if isinstance(value, str) and name not in ("service_name", "service_version", "profile_dir"):
        return _ENV[name][1](f"{name} (argument)", value)
    if name == "access_log_sample":
        return _parse_fraction(f"{name} (argument)", str(value))
    return value


_ENV: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "service_name": ("OBS_SERVICE_NAME", _parse_text),
    "service_version": ("OBS_SERVICE_VERSION", _parse_text),
    "log_level": ("OBS_LOG_LEVEL", _parse_choice(LOG_LEVELS)),
    "log_format": ("OBS_LOG_FORMAT", _parse_choice(LOG_FORMATS)),
    "redact_keys": ("OBS_REDACT_KEYS", _parse_list),
    "access_log": ("OBS_ACCESS_LOG", _parse_bool),
    "exclude_paths": ("OBS_EXCLUDE_PATHS", _parse_list),
    "access_log_sample": ("OBS_ACCESS_LOG_SAMPLE", _parse_fraction),
    "profile_token": ("OBS_PROFILE_TOKEN", _parse_text),
    "profile_dir": ("OBS_PROFILE_DIR", _parse_text),
    # slow-request profiles (issue 20)
    "slow_profiles": ("OBS_SLOW_PROFILES", _parse_bool),
    "slow_profile_threshold": ("OBS_SLOW_PROFILE_THRESHOLD", _parse_positive(float)),
    "slow_profile_rate": ("OBS_SLOW_PROFILE_RATE", _parse_positive(int)),
    "slow_profile_max_files": ("OBS_SLOW_PROFILE_MAX_FILES", _parse_positive(int)),
    "slow_profile_max_bytes": ("OBS_SLOW_PROFILE_MAX_BYTES", _parse_positive(int)),
    "slow_profile_per_minute": ("OBS_SLOW_PROFILE_PER_MINUTE", _parse_positive(int)),
}

#: The environment variables obs reads, for documentation and ``obs config``.
ENVIRONMENT_VARIABLES: tuple[str, ...] = tuple(var for var, _ in _ENV.values())
