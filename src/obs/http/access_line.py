"""The access line: one structured line per request, its fields, sampling, and the masking of
its query and of the path segments its route template names as secrets."""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Any

from obs.http.secret_paths import SecretPathMask, secret_path_mask
from obs.logs.emitter import EventEmitter
from obs.logs.redaction import RedactSecrets

if TYPE_CHECKING:
    from obs.http.observation import RequestObservation

#: Successful requests slower than this are always logged, whatever the sampling rate.
SLOW_REQUEST_SECONDS = 1.0
#: The logger name of access lines.
ACCESS_LOGGER = "obs.access"
#: Route templates whose path masks are cached (labels are bounded by ``max_routes``, 500 by
#: default; past this, a template's mask is computed for each of its requests).
PATH_MASK_CACHE_LIMIT = 2048
_UNSEEN = SecretPathMask.__new__(SecretPathMask)  # "not looked at yet", unlike None (no secret)

#: Every key of the access line, each holding a value obs itself made (scalars; the query
#: already masked): the redaction step checks only the keys that come from elsewhere, like
#: bound context. ``exc_info`` is rendered by the exception step, as in every other line.
ACCESS_KEYS = frozenset(
    {
        "event", "http_request_method", "http_route", "path", "status", "duration_ms",
        "bytes_in", "bytes_out", "request_id", "query", "client_addr", "user_agent",
        "trace_id", "profile", "error_type", "exc_info",
        "level", "logger", "service", "timestamp",
    }
)  # fmt: skip


class AccessLog:
    """Writes the access line of finished requests, unless excluded or sampled out."""

    def __init__(
        self,
        redactor: RedactSecrets,
        exclude_paths: frozenset[str],
        sample_rate: float,
        *,
        exclude_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.exclude_paths = exclude_paths
        #: Entries of ``OBS_EXCLUDE_PATHS`` that ended in ``/*``, without the ``*``.
        self.exclude_prefixes = exclude_prefixes
        self.sample_rate = sample_rate
        self._redactor = redactor
        self._emitter = EventEmitter(ACCESS_LOGGER, ACCESS_KEYS)
        #: Route template -> the mask of its secret path parameters, ``None`` when it has none.
        self._path_masks: dict[str, SecretPathMask | None] = {}

    def excludes(self, path: str) -> bool:
        """Whether requests to *path* get no access line (``OBS_EXCLUDE_PATHS``)."""
        return path in self.exclude_paths or bool(
            self.exclude_prefixes and path.startswith(self.exclude_prefixes)
        )

    def write(self, observation: RequestObservation, route: str, duration: float) -> bool:
        """Log *observation*, finished after *duration* seconds, labelled *route*; return
        whether the line was written (not excluded, not sampled out)."""
        if observation.path in self.exclude_paths or (
            self.exclude_prefixes and observation.path.startswith(self.exclude_prefixes)
        ):  # excludes(), inlined: a call fewer per request
            return False
        status = observation.status
        if (
            self.sample_rate < 1.0
            and status < 400
            and duration < SLOW_REQUEST_SECONDS
            and random.random() >= self.sample_rate
        ):
            return False
        path = observation.path
        # One lookup for a template seen before; only templates naming a secret ({token}) cost
        # a match of the path.
        path_mask = self._path_masks.get(route, _UNSEEN)
        if path_mask is not None:
            if path_mask is _UNSEEN:
                path_mask = self._path_mask(route)
            if path_mask is not None:
                path = path_mask(path)
        if "=" in path or ":" in path:  # scrubbing only what can hold a secret: most paths can't
            path = self._redactor.scrub_text(path)  # URL userinfo, ;token=…
        fields: dict[str, Any] = {
            "event": "request",
            "http_request_method": observation.raw_method,
            "http_route": route,
            "path": path,
            "status": status,
            "duration_ms": round(duration * 1_000_000.0) / 1000,  # 3 decimals, cheaper
            "bytes_in": observation.bytes_in,
            "bytes_out": observation.bytes_out,
        }
        if observation.request_id is not None:
            fields["request_id"] = observation.request_id
        if observation.query:
            fields["query"] = self.redact_query(observation.query)
        if observation.client is not None:
            fields["client_addr"] = observation.client
        if observation.user_agent is not None:
            fields["user_agent"] = observation.user_agent
        if observation.trace_id is not None:
            fields["trace_id"] = observation.trace_id
        if observation.profile_path is not None:
            fields["profile"] = observation.profile_path
        if observation.error_type:
            fields["error_type"] = observation.error_type
        if observation.exception is not None:
            fields["exc_info"] = observation.exception
        if status >= 500:
            self._emitter.emit("error", logging.ERROR, fields)
        elif status >= 400:
            self._emitter.emit("warning", logging.WARNING, fields)
        else:
            self._emitter.emit("info", logging.INFO, fields)
        return True

    def _path_mask(self, route: str) -> SecretPathMask | None:
        mask = secret_path_mask(route, self._redactor.is_secret, self._redactor.mask)
        if len(self._path_masks) < PATH_MASK_CACHE_LIMIT:
            self._path_masks[route] = mask
        return mask

    def redact_query(self, query: str) -> str:
        """The query string with the values of secret parameters masked."""
        return self._redactor.redact_query(query)
