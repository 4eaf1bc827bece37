"""Masking secrets before they reach a log line.

Keys are matched case-insensitively with ``-`` equal to ``_``, exactly or as a ``_``-separated
suffix (``access_token`` and ``x_api_key`` match ``token`` and ``api_key``). Nested dicts, lists
and header pairs are walked; the caller's objects are never modified (a changed copy is logged).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from structlog.typing import EventDict, WrappedLogger

from obs.config import DEFAULT_REDACT_KEYS

MASK = "[REDACTED]"
_MAX_DEPTH = 8
_CACHE_LIMIT = 4096
_SCALARS = frozenset({str, int, float, bool, type(None)})


class RedactSecrets:
    """A structlog processor that replaces the values of secret keys with :data:`MASK`."""

    def __init__(self, keys: Iterable[str] = DEFAULT_REDACT_KEYS, mask: str = MASK) -> None:
        self.keys = frozenset(k.strip().lower().replace("-", "_") for k in keys)
        self.mask = mask
        self._verdicts: dict[str, bool] = {}

    def is_secret(self, key: Any) -> bool:
        """Whether values under *key* must be masked."""
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        if not isinstance(key, str):
            return False
        verdict = self._verdicts.get(key)
        if verdict is None:
            norm = key.lower().replace("-", "_")
            verdict = norm in self.keys or any(norm.endswith("_" + k) for k in self.keys)
            if len(self._verdicts) < _CACHE_LIMIT:
                self._verdicts[key] = verdict
        return verdict

    def redact(self, value: Any, depth: int = 0) -> Any:
        """Return *value* with secrets masked: the same object when nothing needed masking."""
        if depth >= _MAX_DEPTH:
            return value
        if isinstance(value, dict):
            changed: dict[Any, Any] | None = None
            for key, item in value.items():
                new = self.mask if self.is_secret(key) else self.redact(item, depth + 1)
                if new is not item:
                    if changed is None:
                        changed = dict(value)
                    changed[key] = new
            return value if changed is None else changed
        if isinstance(value, list | tuple):
            if (
                isinstance(value, tuple)
                and len(value) == 2
                and isinstance(value[0], str | bytes)
                and self.is_secret(value[0])
            ):
                return (value[0], self.mask)  # a (name, value) header pair
            items = [self.redact(item, depth + 1) for item in value]
            if all(new is old for new, old in zip(items, value, strict=True)):
                return value
            return items if isinstance(value, list) else tuple(items)
        return value

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        verdicts = self._verdicts
        for key, value in event_dict.items():
            # Every log line passes here: known keys cost one dict lookup, scalars no more.
            verdict = verdicts.get(key)
            if verdict is None:
                verdict = self.is_secret(key)
            if verdict:
                event_dict[key] = self.mask
            elif type(value) not in _SCALARS and isinstance(value, dict | list | tuple):
                event_dict[key] = self.redact(value, 1)
        return event_dict

    def redact_untrusted(self, event_dict: EventDict, trusted: frozenset[str]) -> EventDict:
        """Like a call, but only for keys outside *trusted* (set operations, done in C)."""
        if event_dict.keys() <= trusted:  # the usual case: nothing but the caller's own keys
            return event_dict
        for key in event_dict.keys() - trusted:
            value = event_dict[key]
            if self.is_secret(key):
                event_dict[key] = self.mask
            elif isinstance(value, dict | list | tuple):
                event_dict[key] = self.redact(value, 1)
        return event_dict
