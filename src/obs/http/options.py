"""Middleware arguments, checked where they are given: at construction, never per request.

Every adapter (``obs.asgi``, ``obs.wsgi``, ``obs.django``, Flask's ``instrument()``) calls the
functions here before it builds anything, so that ``max_routes="10"`` or a WSGI app under the
ASGI middleware is one clear error at start-up (a :class:`TypeError` for a value of the wrong
kind, a :class:`~obs.exceptions.ConfigError` for a value out of range), naming the argument, the
value and what it accepts, instead of a failure on every request.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from obs.config import Settings, check_buckets, check_header_name, check_paths
from obs.exceptions import ConfigError
from obs.metrics import RESERVED_LABELS

#: The value of an extra label whose header is missing or not in the allow-list.
OTHER_LABEL_VALUE = "_other"

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


@dataclass(frozen=True, slots=True)
class HeaderLabel:
    """An extra metric label read from a request header, bounded by an allow-list.

    Values outside *allowed* (and a missing header) become ``_other``, so a client can never
    make new series: the label has at most ``len(allowed) + 1`` values.
    """

    header: str
    allowed: frozenset[str]

    def value(self, raw: str | None) -> str:
        """The label value of a header whose value is *raw* (``None`` when absent)."""
        return raw if raw is not None and raw in self.allowed else OTHER_LABEL_VALUE


def from_header(header: str, allowed: Iterable[str]) -> HeaderLabel:
    """An extra label taken from request header *header*, limited to the values *allowed*::

    ObservabilityMiddleware(app, extra_labels={"tenant": from_header("X-Tenant", ["a", "b"])})
    """
    header = check_header_name("from_header(header)", _text("from_header(header)", header))
    if isinstance(allowed, str) or not isinstance(allowed, Iterable):
        raise TypeError(
            f"from_header(allowed={allowed!r}): give a list of the values to keep, "
            "e.g. ['free', 'pro']."
        )
    values = frozenset(allowed)
    if not values or not all(isinstance(v, str) and v for v in values):
        raise ConfigError(
            f"from_header(allowed={sorted(map(str, values))!r}): give at least one non-empty "
            "string; every other value becomes '_other'."
        )
    return HeaderLabel(header.lower(), values)


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name}={value!r} ({type(value).__name__}): give a string.")
    return value


def _integer(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        hint = f" (convert it: {name}=int(...))" if isinstance(value, str) else ""
        raise TypeError(
            f"{name}={value!r} ({type(value).__name__}): give a whole number of at least 1{hint}."
        )
    if value < 1:
        raise ConfigError(f"{name}={value!r}: give a whole number of at least 1.")


def _flag(name: str, value: Any, *, optional: bool = False) -> None:
    if isinstance(value, bool) or (optional and value is None):
        return
    accepted = "True, False or None (None: from the environment)" if optional else "True or False"
    raise TypeError(f"{name}={value!r} ({type(value).__name__}): give {accepted}.")


def _callable(name: str, value: Any, what: str) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{name}={value!r} ({type(value).__name__}): give {what}, or None.")


def _paths(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise TypeError(f"{name}={value!r}: give a list of paths, e.g. ['/metrics', '/static/*'].")
    items = tuple(value)
    for item in items:
        _text(name, item)
    check_paths(name, items)


def check_observer_options(options: Mapping[str, Any]) -> None:
    """Check the keyword arguments of :class:`~obs.http.observer.HttpObserver`."""
    registry = options.get("registry")
    if registry is not None and not isinstance(registry, CollectorRegistry):
        raise TypeError(
            f"registry={registry!r} ({type(registry).__name__}): give a "
            "prometheus_client.CollectorRegistry, or None for the global one."
        )
    settings = options.get("settings")
    if settings is not None and not isinstance(settings, Settings):
        raise TypeError(
            f"settings={settings!r} ({type(settings).__name__}): give an obs.Settings "
            "(Settings.from_env(...)), or None to read OBS_* variables."
        )
    for name in ("max_routes", "max_label_sets"):
        if name in options:
            _integer(name, options[name])
    for name in ("record_body_sizes", "request_ids"):
        if name in options:
            _flag(name, options[name])
    if "access_log" in options:
        _flag("access_log", options["access_log"], optional=True)
    profiler = options.get("profiler")
    if profiler is not None and not (hasattr(profiler, "enabled") and hasattr(profiler, "start")):
        raise TypeError(
            f"profiler={profiler!r}: give an obs.profiling.RequestProfiler (or an object with "
            "'enabled' and 'start'), or None."
        )
    _paths("exclude_paths", options.get("exclude_paths"))
    _paths("metrics_exclude_paths", options.get("metrics_exclude_paths"))
    buckets = options.get("duration_buckets")
    if buckets is not None:
        if isinstance(buckets, str | bytes) or not isinstance(buckets, Iterable):
            raise TypeError(f"duration_buckets={buckets!r}: give a list of seconds, e.g. [0.1, 1].")
        items = list(buckets)
        if not all(isinstance(b, int | float) and not isinstance(b, bool) for b in items):
            raise TypeError(f"duration_buckets={buckets!r}: give numbers of seconds.")
        check_buckets("duration_buckets", [float(b) for b in items])
    header = options.get("request_id_header")
    if header is not None:
        check_header_name("request_id_header", _text("request_id_header", header))
    _callable(
        "request_id_generator",
        options.get("request_id_generator"),
        "a function taking no argument and returning a new id (str)",
    )
    _callable(
        "request_id_validator",
        options.get("request_id_validator"),
        "a function taking the incoming id (str) and returning whether to keep it",
    )
    _extra_labels(options.get("extra_labels"))


def _extra_labels(labels: Any) -> None:
    if labels is None:
        return
    if not isinstance(labels, Mapping):
        raise TypeError(
            f"extra_labels={labels!r}: give a dict of label name to "
            "obs.http.options.from_header(...), e.g. {'tenant': from_header('X-Tenant', ['a'])}."
        )
    for name, source in labels.items():
        if not isinstance(name, str) or not _LABEL_NAME.match(name) or name.startswith("__"):
            raise ConfigError(
                f"extra_labels: {name!r} is not a Prometheus label name; use letters, digits "
                "and '_', not starting with a digit or '__'."
            )
        if name in RESERVED_LABELS:
            raise ConfigError(
                f"extra_labels: {name!r} is already a label of obs's metrics (or Prometheus's); "
                "choose another name."
            )
        if not isinstance(source, HeaderLabel):
            raise TypeError(
                f"extra_labels[{name!r}]={source!r}: give from_header(header, allowed=[...]); "
                "unbounded values would make a series per value."
            )


def _positional_parameters(func: Any) -> int | None:
    """How many positional parameters *func* requires, or ``None`` if unknown."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    required = 0
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return None
        if (
            parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
            and parameter.default is parameter.empty
        ):
            required += 1
    return required


def _is_async(app: Any) -> bool:
    call = type(app).__dict__.get("__call__") or getattr(type(app), "__call__", None)  # noqa: B004
    return inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(call)


def _kind(app: Any) -> str:
    return f"{type(app).__module__}.{type(app).__qualname__}"


def check_asgi_app(app: Any, where: str = "obs.asgi.ObservabilityMiddleware") -> None:
    """*app* can be an ASGI 3 app: callable, and not recognisably a WSGI app."""
    if app is None or not callable(app):
        raise TypeError(
            f"{where}(app={app!r}): give the ASGI application to observe "
            "(an async callable taking scope, receive, send)."
        )
    if not _is_async(app) and (hasattr(app, "wsgi_app") or _positional_parameters(app) == 2):
        raise TypeError(
            f"{where}(app=<{_kind(app)}>): this is a WSGI application (environ, start_response); "
            "use obs.wsgi.ObservabilityMiddleware, or Flask's obs.integrations.flask.instrument()."
        )


def check_wsgi_app(app: Any, where: str = "obs.wsgi.ObservabilityMiddleware") -> None:
    """*app* can be a WSGI app: callable, and not recognisably an ASGI app."""
    if app is None or not callable(app):
        raise TypeError(
            f"{where}(app={app!r}): give the WSGI application to observe "
            "(a callable taking environ, start_response)."
        )
    if _is_async(app) or _positional_parameters(app) == 3:
        raise TypeError(
            f"{where}(app=<{_kind(app)}>): this is an ASGI application (scope, receive, send); "
            "use obs.asgi.ObservabilityMiddleware."
        )


def check_route_getter(getter: Callable[..., Any] | None) -> None:
    """A route getter is a callable of two arguments, or ``None`` for the default."""
    _callable("route_getter", getter, "a function (scope or environ, root path) -> template")


def check_metrics_path(path: Any) -> None:
    """Where an integration serves ``/metrics``: a path, or ``None`` for nowhere."""
    if path is None:
        return
    check_paths("metrics_path", (_text("metrics_path", path),))
