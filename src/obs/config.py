"""Settings, read twelve-factor style from ``OBS_*`` environment variables.

Explicit arguments win over the environment, the environment wins over the defaults, and an
invalid value raises :class:`~obs.exceptions.ConfigError` naming the variable and what it allows.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import unquote

from obs.exceptions import ConfigError

LOG_FORMATS: tuple[str, ...] = ("json", "console", "auto")
LOG_LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error", "critical")

#: Keys whose values never reach a log line. Keys are compared after :func:`normalise_key`,
#: separators ignored, as suffixes: ``accessToken``, ``x.api.key``, ``db_password`` and
#: ``session_id`` are covered too. ``OBS_REDACT_KEYS`` adds to these.
DEFAULT_REDACT_KEYS: frozenset[str] = frozenset(
    {
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "token",
        "api_key",
        "apikey",
        "access_key",
        "secret_key",
        "private_key",
        "client_secret",
        "credentials",
        "credential",
        "session",
        "sessionid",
        "csrftoken",
        "csrf",
        "xsrf",
        "signature",
        "jwt",
        "x_obs_profile",
    }
)
#: The shortest ``OBS_PROFILE_TOKEN`` accepted: a short token can be guessed over the network.
MIN_PROFILE_TOKEN_LENGTH = 16

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


def _parse_keys(name: str, raw: str) -> tuple[str, ...]:
    keys = _parse_list(name, raw)
    if not keys:
        raise ConfigError(
            f"{name} is set but names no key; unset it (the defaults stay in force) or list keys "
            "to add, such as ssn,card_number. To drop the defaults set OBS_REDACT_DEFAULTS=false."
        )
    return keys


def _parse_token(name: str, raw: str) -> str:
    value = _parse_text(name, raw)
    if len(value) < MIN_PROFILE_TOKEN_LENGTH:
        raise ConfigError(
            f"{name} is {len(value)} characters long; use at least {MIN_PROFILE_TOKEN_LENGTH} "
            "(for example: python -c 'import secrets; print(secrets.token_urlsafe(24))')."
        )
    return value


def _parse_fraction(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name}={raw!r} is invalid; use a number from 0 to 1.")
    return value


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
    redact_defaults: bool = True
    access_log: bool = True
    exclude_paths: tuple[str, ...] = DEFAULT_EXCLUDE_PATHS
    access_log_sample: float = 1.0
    profile_token: str | None = None
    profile_dir: str = "profiles"

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
        if "redact_keys" in values or "redact_defaults" in values:
            # OBS_REDACT_KEYS adds to the defaults; only OBS_REDACT_DEFAULTS=false drops them.
            added = frozenset(normalise_key(k) for k in values.get("redact_keys", ()))
            keep = values.get("redact_defaults", True)
            values["redact_keys"] = (DEFAULT_REDACT_KEYS if keep else frozenset()) | added
        return cls(**values)


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[^a-z0-9]+")


def normalise_key(key: str) -> str:
    """*key* as redaction compares it: percent-decoded, split at camelCase boundaries,
    lower-case, every run of other characters (``-``, ``.``, spaces, brackets) one ``_``:
    ``accessToken``, ``Access-Token`` and ``pass%77ord`` become ``access_token`` and
    ``password``."""
    if "%" in key:
        key = unquote(key)
    key = _CAMEL.sub("_", key.strip())
    return _SEPARATORS.sub("_", key.lower()).strip("_")


def _validate_override(name: str, var: str, value: Any) -> Any:
    """Check an explicit argument the same way its environment variable would be checked."""
    if isinstance(value, str) and name not in ("service_name", "service_version", "profile_dir"):
        return _ENV[name][1](f"{name} (argument)", value)
    if name == "access_log_sample":
        return _parse_fraction(f"{name} (argument)", str(value))
    if name == "redact_keys":
        return _parse_keys(f"{name} (argument)", ",".join(value))
    return value


_ENV: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "service_name": ("OBS_SERVICE_NAME", _parse_text),
    "service_version": ("OBS_SERVICE_VERSION", _parse_text),
    "log_level": ("OBS_LOG_LEVEL", _parse_choice(LOG_LEVELS)),
    "log_format": ("OBS_LOG_FORMAT", _parse_choice(LOG_FORMATS)),
    "redact_keys": ("OBS_REDACT_KEYS", _parse_keys),
    "redact_defaults": ("OBS_REDACT_DEFAULTS", _parse_bool),
    "access_log": ("OBS_ACCESS_LOG", _parse_bool),
    "exclude_paths": ("OBS_EXCLUDE_PATHS", _parse_list),
    "access_log_sample": ("OBS_ACCESS_LOG_SAMPLE", _parse_fraction),
    "profile_token": ("OBS_PROFILE_TOKEN", _parse_token),
    "profile_dir": ("OBS_PROFILE_DIR", _parse_text),
}

#: The environment variables obs reads, for documentation and ``obs config``.
ENVIRONMENT_VARIABLES: tuple[str, ...] = tuple(var for var, _ in _ENV.values())
