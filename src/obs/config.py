"""Settings, read twelve-factor style from ``OBS_*`` environment variables.

Explicit arguments win over the environment, the environment wins over the defaults, and an
invalid value raises :class:`~obs.exceptions.ConfigError` naming the variable and what it allows.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import unquote

from obs.exceptions import ConfigError

LOG_FORMATS: tuple[str, ...] = ("json", "console", "auto")
LOG_LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error", "critical")
#: Spellings accepted for a level, as the standard library and most tools write them.
LOG_LEVEL_ALIASES: dict[str, str] = {"warn": "warning", "fatal": "critical"}

#: Keys whose values never reach a log line. Keys are compared after :func:`normalise_key`: a
#: key matches when one of its words is a one-word key here (trailing digits dropped:
#: ``password1``, ``new_password2``, ``password_hash``, ``otp_code``), or when it ends with one,
#: separators ignored (``accessToken``, ``x.api.key``, ``db_password``, ``session_id``).
#: ``OBS_REDACT_KEYS`` adds to these.
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
        "otp",
        "x_obs_profile",
    }
)
#: Query parameters masked by their exact name, in query strings only (where these names are
#: OAuth's and the clouds' conventions; as log keys they are too common to mean a secret):
#: ``code`` (an OAuth authorization code), ``sig`` and ``signature`` (Azure SAS tokens, signed
#: URLs), ``key`` (Google API keys), ``otp``. ``OBS_REDACT_DEFAULTS=false`` drops them too.
DEFAULT_REDACT_QUERY_NAMES: frozenset[str] = frozenset({"code", "sig", "signature", "key", "otp"})
#: The shortest ``OBS_PROFILE_TOKEN`` accepted: a short token can be guessed over the network.
MIN_PROFILE_TOKEN_LENGTH = 16

#: Paths whose requests are measured but not access-logged by default.
DEFAULT_EXCLUDE_PATHS: tuple[str, ...] = ("/metrics", "/health", "/healthz", "/ready", "/readyz")
#: Paths whose requests are neither counted nor gauged by default: the scrape itself, which
#: would otherwise be traffic in every RED series and keep the active-requests gauge above 0.
DEFAULT_METRICS_EXCLUDE_PATHS: tuple[str, ...] = ("/metrics",)
#: The header a request id is read from and returned in (any case; HTTP names are case-blind).
DEFAULT_REQUEST_ID_HEADER = "X-Request-ID"
#: An entry of a path list ending in this matches every path that starts with what precedes
#: the ``*`` (``/static/*`` matches ``/static/app.js``); every other entry matches exactly.
PREFIX_WILDCARD = "*"

# RFC 9110 token characters: what a header name may be made of.
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class InvalidEnvironmentError(ConfigError, SystemExit):
    """An ``OBS_*`` variable read at start-up has an invalid value.

    Also a :class:`SystemExit`: a server importing the app (uvicorn, gunicorn, hypercorn) lets
    it through its generic error handling, and the interpreter prints just the message, one
    line, and exits non-zero instead of printing a traceback of the server's import machinery.
    ``except ConfigError`` still catches it.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.code: str | int = message
        if "gunicorn.arbiter" in sys.modules:
            # A gunicorn worker exiting with status 1 is restarted forever; 3 is gunicorn's
            # "worker failed to boot", which stops the master. An int code prints nothing,
            # so the one line is written here.
            sys.stderr.write(message + "\n")
            sys.stderr.flush()
            self.code = 3


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean; use one of: true, false, 1, 0.")


def _parse_choice(
    choices: tuple[str, ...], aliases: Mapping[str, str] | None = None
) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        value = raw.strip().lower()
        if aliases:
            value = aliases.get(value, value)
        if value not in choices:
            raise ConfigError(f"{name}={raw!r} is invalid; use one of: {', '.join(choices)}.")
        return value

    return parse


def _parse_list(name: str, raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _parse_paths(name: str, raw: str) -> tuple[str, ...]:
    return check_paths(name, _parse_list(name, raw))


def check_paths(name: str, paths: tuple[str, ...]) -> tuple[str, ...]:
    """*paths* if each is a path (``/...``, optionally ending in ``/*``), else a ConfigError."""
    for path in paths:
        if not path.startswith("/"):
            raise ConfigError(
                f"{name}: {path!r} is not a path; paths start with '/' (e.g. '/{path.lstrip('/')}'"
                f", or '/{path.strip('/*')}/*' for everything under it)."
            )
        if PREFIX_WILDCARD in path[:-1]:
            raise ConfigError(
                f"{name}: {path!r} has a '*' before its end; only a trailing '/*' (a prefix) "
                "is supported."
            )
    return paths


def _parse_buckets(name: str, raw: str) -> tuple[float, ...]:
    values: list[float] = []
    for item in _parse_list(name, raw):
        try:
            values.append(float(item))
        except ValueError:
            raise ConfigError(
                f"{name}: {item!r} is not a number; use seconds separated by commas, "
                "e.g. 0.01,0.1,1,10."
            ) from None
    return check_buckets(name, values)


def check_buckets(name: str, values: list[float]) -> tuple[float, ...]:
    """Histogram boundaries, positive and increasing (a final +Inf is implied and dropped)."""
    if values and values[-1] == math.inf:
        values = values[:-1]
    if not values:
        raise ConfigError(f"{name} has no boundaries; give at least one, e.g. 0.1,1,10.")
    for value in values:
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(f"{name}: {value!r} is not a positive number of seconds.")
    if any(later <= earlier for earlier, later in itertools.pairwise(values)):
        raise ConfigError(
            f"{name}={','.join(map(repr, values))} is not strictly increasing; sort the "
            "boundaries and remove duplicates."
        )
    return tuple(values)


def _parse_header_name(name: str, raw: str) -> str:
    return check_header_name(name, raw.strip())


def check_header_name(name: str, value: str) -> str:
    """*value* if it is an HTTP header name (an RFC 9110 token), else a ConfigError."""
    if not value or not set(value) <= _TOKEN:
        raise ConfigError(
            f"{name}={value!r} is not an HTTP header name; use letters, digits and '-', "
            "e.g. X-Correlation-ID."
        )
    return value


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
    redact_defaults: bool = True
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
    metrics_exclude_paths: tuple[str, ...] = DEFAULT_METRICS_EXCLUDE_PATHS
    #: ``None``: the catalogue's (:data:`obs.metrics.DURATION_BUCKETS`, OpenTelemetry's).
    duration_buckets: tuple[float, ...] | None = None
    request_id_header: str = DEFAULT_REQUEST_ID_HEADER

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``OBS_*`` variables from *environ* (default ``os.environ``).

        Keyword arguments that are not ``None`` override the environment. Unknown keywords are
        a :class:`ConfigError`, so a typo never silently does nothing. An invalid variable of
        the process environment (*environ* not given) is an :class:`InvalidEnvironmentError`.
        """
        process_environment = environ is None
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
                try:
                    values[name] = parse(var, raw)
                except ConfigError as exc:
                    if process_environment:
                        raise InvalidEnvironmentError(str(exc)) from None
                    raise
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
    where = f"{name} (argument)"
    if isinstance(value, str) and name not in ("service_name", "service_version", "profile_dir"):
        return _ENV[name][1](where, value)
    if name == "access_log_sample":
        return _parse_fraction(where, str(value))
    if name == "redact_keys":
        return _parse_keys(where, ",".join(str(item) for item in value))
    if name in ("exclude_paths", "metrics_exclude_paths"):
        items = tuple(value)
        if not all(isinstance(item, str) for item in items):
            raise ConfigError(f"{where}={value!r}: give a list of strings.")
        return check_paths(where, items)
    if name == "duration_buckets":
        try:
            return check_buckets(where, [float(v) for v in value])
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"{where}={value!r}: give a list of numbers of seconds.") from None
    return value


def environment_value(value: Any) -> str:
    """*value* written the way an ``OBS_*`` variable holds it (``true``, ``a,b``, ``0.25``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, frozenset):
        return ",".join(sorted(value))
    if isinstance(value, tuple):
        return ",".join(environment_value(item) for item in value)
    return str(value)


_ENV: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "service_name": ("OBS_SERVICE_NAME", _parse_text),
    "service_version": ("OBS_SERVICE_VERSION", _parse_text),
    "log_level": ("OBS_LOG_LEVEL", _parse_choice(LOG_LEVELS, LOG_LEVEL_ALIASES)),
    "log_format": ("OBS_LOG_FORMAT", _parse_choice(LOG_FORMATS)),
    "redact_keys": ("OBS_REDACT_KEYS", _parse_keys),
    "redact_defaults": ("OBS_REDACT_DEFAULTS", _parse_bool),
    "access_log": ("OBS_ACCESS_LOG", _parse_bool),
    "exclude_paths": ("OBS_EXCLUDE_PATHS", _parse_paths),
    "access_log_sample": ("OBS_ACCESS_LOG_SAMPLE", _parse_fraction),
    "profile_token": ("OBS_PROFILE_TOKEN", _parse_token),
    "profile_dir": ("OBS_PROFILE_DIR", _parse_text),
    # slow-request profiles (issue 20)
    "slow_profiles": ("OBS_SLOW_PROFILES", _parse_bool),
    "slow_profile_threshold": ("OBS_SLOW_PROFILE_THRESHOLD", _parse_positive(float)),
    "slow_profile_rate": ("OBS_SLOW_PROFILE_RATE", _parse_positive(int)),
    "slow_profile_max_files": ("OBS_SLOW_PROFILE_MAX_FILES", _parse_positive(int)),
    "slow_profile_max_bytes": ("OBS_SLOW_PROFILE_MAX_BYTES", _parse_positive(int)),
    "slow_profile_per_minute": ("OBS_SLOW_PROFILE_PER_MINUTE", _parse_positive(int)),
    "metrics_exclude_paths": ("OBS_METRICS_EXCLUDE_PATHS", _parse_paths),
    "duration_buckets": ("OBS_DURATION_BUCKETS", _parse_buckets),
    "request_id_header": ("OBS_REQUEST_ID_HEADER", _parse_header_name),
}

#: The environment variables obs reads, for documentation and ``obs config``.
ENVIRONMENT_VARIABLES: tuple[str, ...] = tuple(var for var, _ in _ENV.values())
