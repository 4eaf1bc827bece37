"""Masking secrets before they reach a log line.

Keys are normalised before matching (:func:`obs.config.normalise_key`: percent-decoding, case,
camelCase boundaries, and ``-``, ``_``, ``.``, spaces and brackets as one separator), then match
when one of their words, trailing digits dropped, is a one-word secret key (``password1``,
``new_password2``, ``passwordConfirm``, ``user[password_confirmation]``, ``password_hash``,
``otp_code``), or when they end with a secret key, separators ignored (``accessToken``,
``x.api.key``, ``xapikey``, ``db_password``, ``session_id``). Words, not substrings: Django's
exception filter matches ``KEY`` and ``PASS`` anywhere (``monkey``, ``passenger``), Sentry's SDK
only whole keys (``password1`` passes); whole words catch the form-field conventions of Django
and Rails without ``status_code``, ``keyboard`` or ``passenger``. In query strings the exact
names of :data:`~obs.config.DEFAULT_REDACT_QUERY_NAMES` (``code``, ``sig``, ``key``...) are
secret too. Values are walked to any depth without
recursion (an explicit stack), through every mapping (``dict``, Starlette's and werkzeug's
``Headers``, ``MappingProxyType``), sequence and set type, dataclass and attrs instance, and header
pairs such as ``(b"authorization", b"...")`` or ``[["cookie", "..."]]``; a changed copy of plain
dicts, lists and tuples is logged, the caller's objects are never modified. Other objects are
logged as their ``repr`` (a failing ``repr`` as a placeholder), so the renderer never sees
anything it could choke on.

Text is scrubbed too (:meth:`RedactSecrets.scrub_text`): ``key=value`` and ``key: value`` pairs
whose key is secret, query strings, and URL userinfo (``https://user:pw@host``) in every string
of a line: the event, the servers' own lines, exception messages.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence, Set
from typing import Any
from urllib.parse import unquote_plus

from structlog.typing import EventDict, WrappedLogger

from obs.config import DEFAULT_REDACT_KEYS, DEFAULT_REDACT_QUERY_NAMES, Settings, normalise_key

MASK = "[REDACTED]"
#: Containers nested deeper than this are logged as a placeholder: renderers (orjson: 254
#: levels, ``repr``: the recursion limit) could not render them, and nothing below is shown.
MAX_DEPTH = 100
DEEP = "[nested deeper than 100 levels]"
CIRCULAR = "[circular reference]"
_CACHE_LIMIT = 4096
#: Percent-encodings decoded inside a query parameter's value (``%253D`` is two) before the
#: value is masked whole for hiding what it holds.
MAX_NESTED_ENCODINGS = 4
_QUERY_SEPARATORS = re.compile(r"([&;])")
_DIGITS = "0123456789"
_SCALARS = frozenset({int, float, bool, type(None)})
#: Leaf types the JSON renderer writes natively; everything else becomes its (scrubbed) repr.
_NATIVE = (int, float, datetime.datetime, datetime.date, datetime.time, uuid.UUID, enum.Enum)
#: Keys whose values redaction leaves alone: the exception step renders ``exc_info`` (and the
#: result is scrubbed), and obs itself writes the standard fields (a timestamp has colons).
_SKIPPED_KEYS = frozenset({"exc_info", "stack_info", "timestamp", "level", "logger", "service"})

#: URL userinfo: ``scheme://user:password@`` (a token as user name counts as well).
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)[^/\s@?#\"'<>]+@")
#: The ``key=`` or ``key:`` of a pair (the key is checked, then its value matched).
_KEY = re.compile(r"""(?P<key>[\w.\-\[\]%]+)['"]?\s*[=:]\s*""")
#: A pair's value: quoted, or one word (after an auth scheme such as ``Bearer``).
_VALUE = re.compile(
    r""""[^"]*"?|'[^']*'?|(?i:(?:bearer|basic|digest|token|negotiate)\s+)?[^\s&;,'"<>(){}\[\]]*"""
)


#: Where a header's value ends in text: the end of its line.
_LINE_END = re.compile(r"[\r\n]")


def _is_cookie(key: str) -> bool:
    """Whether a key found in text names a cookie header (``Cookie``, ``Set-Cookie``)."""
    return key[-6:].lower() == "cookie"


def safe_repr(value: Any) -> str:
    """``repr(value)``, or a placeholder naming its type when ``repr`` itself fails."""
    try:
        return repr(value)
    except Exception:
        try:
            name = type(value).__qualname__
        except Exception:
            name = "object"
        return f"<unrepresentable {name}>"


class RedactSecrets:
    """A structlog processor that replaces the values of secret keys with :data:`MASK`.

    *keys* is the exact list to mask (:class:`obs.config.Settings` adds ``OBS_REDACT_KEYS`` to
    :data:`~obs.config.DEFAULT_REDACT_KEYS` before it gets here). Never raises: an event that
    cannot be walked is replaced by one saying so (see :meth:`__call__`).
    """

    def __init__(
        self,
        keys: Iterable[str] = DEFAULT_REDACT_KEYS,
        mask: str = MASK,
        *,
        query_names: Iterable[str] = DEFAULT_REDACT_QUERY_NAMES,
    ) -> None:
        self.keys = frozenset(k for k in (normalise_key(key) for key in keys) if k)
        # One-word keys match as any word of a key: "password_hash", "new_password2".
        self._words = frozenset(k for k in self.keys if "_" not in k)
        # Compared with separators removed, as suffixes: "xapikey" and "db_password" match.
        self._compact = tuple(sorted({k.replace("_", "") for k in self.keys}))
        #: Parameter names secret in query strings only, matched exactly (after normalising).
        self.query_names = frozenset(k for k in (normalise_key(n) for n in query_names) if k)
        self.mask = mask
        self._verdicts: dict[Any, bool] = {}
        self._text_verdicts: dict[str, bool] = {}
        self._parameter_verdicts: dict[str, bool] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> RedactSecrets:
        """The redaction *settings* ask for: their keys, and the query-only names unless
        ``OBS_REDACT_DEFAULTS=false`` dropped the defaults."""
        names = DEFAULT_REDACT_QUERY_NAMES if settings.redact_defaults else frozenset()
        return cls(settings.redact_keys, query_names=names)

    # -- keys ------------------------------------------------------------------------------------

    def is_secret(self, key: Any) -> bool:
        """Whether values under *key* (a ``str`` or ``bytes`` name) must be masked."""
        verdict = self._verdicts.get(key) if type(key) is str else None
        if verdict is not None:
            return verdict
        if isinstance(key, bytes | bytearray):
            text = bytes(key).decode("latin-1")
        elif isinstance(key, str):
            text = key
        else:
            return False
        verdict = self._matches(normalise_key(text))
        if type(key) is str and len(self._verdicts) < _CACHE_LIMIT:
            self._verdicts[key] = verdict
        return verdict

    def _matches(self, normal: str) -> bool:
        """The rule, on a key already normalised (computed once per key: callers cache it)."""
        if not normal:
            return False
        words = normal.split("_")
        secret_words = self._words
        for word in words:
            if word in secret_words or word.rstrip(_DIGITS) in secret_words:
                return True
        compact = "".join(words)
        return compact.endswith(self._compact) or compact.rstrip(_DIGITS).endswith(self._compact)

    def is_secret_parameter(self, name: str) -> bool:
        """Whether the value of the query parameter *name* must be masked: a secret key, or
        one of the names secret in queries only (``code``, ``sig``, ``key``...)."""
        verdict = self._parameter_verdicts.get(name)
        if verdict is None:
            verdict = self.is_secret(name) or normalise_key(name) in self.query_names
            if len(self._parameter_verdicts) < _CACHE_LIMIT:  # a query's names, once each
                self._parameter_verdicts[name] = verdict
        return verdict

    # -- text ------------------------------------------------------------------------------------

    def scrub_text(self, text: str) -> str:
        """*text* with URL userinfo and the values of secret ``key=value``/``key: value`` pairs
        (query strings included) masked. Text without ``=`` or ``:`` costs two scans."""
        if "=" not in text and ":" not in text:
            return text
        return self._scrub(text, 0)

    def _scrub(self, text: str, depth: int) -> str:
        if "://" in text:
            text = _USERINFO.sub(self._mask_userinfo, text)
        encoded = "%" in text
        # A key that is not secret consumes only itself and its separator, so that the pair in
        # "ValueError: secret=x" is still found after "ValueError: ".
        parts: list[str] = []
        done = 0
        for match in _KEY.finditer(text):
            if match.start() < done:
                continue
            value = None
            if not self._text_key_is_secret(match["key"]):
                # A query parameter in text (a server's request line): its own names too, and
                # a URL or query encoded in its value (next=%2Fcb%3Ftoken%3D...).
                start = match.start()
                if not (
                    start and text[start - 1] in "?&#" and self.is_secret_parameter(match["key"])
                ):
                    if not encoded:
                        continue
                    value = _VALUE.match(text, match.end())
                    if (
                        value is None
                        or "%" not in value[0]
                        or not self._hides_secret(value[0], depth)
                    ):
                        continue
            end = match.end()
            parts += (text[done:end], self.mask)
            if value is None and text[end : end + 1] not in ("'", '"') and _is_cookie(match["key"]):
                # A cookie header's value is every pair up to the end of the line:
                # "Cookie: theme=dark; _app_sess=…; remember=…".
                line_end = _LINE_END.search(text, end)
                done = len(text) if line_end is None else line_end.start()
                continue
            if value is None:
                value = _VALUE.match(text, end)
            done = end if value is None else value.end()
        if not parts:
            return text
        parts.append(text[done:])
        return "".join(parts)

    def _text_key_is_secret(self, key: str) -> bool:
        # Words found in text (timestamps, addresses) get a cache of their own, emptied when
        # full, so they never crowd the keys of structured events out of theirs.
        verdict = self._text_verdicts.get(key)
        if verdict is None:
            verdict = self._matches(normalise_key(key))
            if len(self._text_verdicts) >= _CACHE_LIMIT:
                self._text_verdicts.clear()
            self._text_verdicts[key] = verdict
        return verdict

    def _mask_userinfo(self, match: re.Match[str]) -> str:
        return f"{match['scheme']}{self.mask}@"

    def redact_query(self, query: str) -> str:
        """A query string with the values of secret parameters masked (``&`` and ``;`` both
        separate; names are percent-decoded and bracketed forms such as ``user[password]``
        match). A value that holds a secret of its own — a URL or query inside it, encoded
        (``next=%2Fcb%3Faccess_token%3D...``) or not, or URL userinfo — is masked whole: its
        decoded form is never logged, since decoding changes what the query says."""
        return self._redact_query(query, 0)

    def _redact_query(self, query: str, depth: int) -> str:
        parts = _QUERY_SEPARATORS.split(query)
        for i in range(0, len(parts), 2):
            name, sep, value = parts[i].partition("=")
            if sep and (
                self.is_secret_parameter(name)
                or (
                    ("%" in value or "=" in value or "@" in value)
                    and self._hides_secret(value, depth)
                )
            ):
                parts[i] = f"{name}={self.mask}"
        return "".join(parts)

    def _hides_secret(self, value: str, depth: int) -> bool:
        """Whether a parameter's *value*, percent-decoded, holds a secret: a secret pair or
        parameter of the URL or query it is, or userinfo. Nested encodings are decoded up to
        :data:`MAX_NESTED_ENCODINGS` levels; a value still encoded past them is masked."""
        decoded = unquote_plus(value) if "%" in value or "+" in value else value
        if depth >= MAX_NESTED_ENCODINGS:
            return decoded != value
        if "=" not in decoded and "@" not in decoded:
            # Encoded twice (%253D): what it holds shows one decoding further.
            return "%" in decoded and decoded != value and self._hides_secret(decoded, depth + 1)
        if "?" in decoded or "#" in decoded or "://" in decoded:
            # A URL: its userinfo and pairs anywhere (fragment included), then its query.
            if self._scrub(decoded, depth + 1) != decoded:
                return True
            decoded = decoded.partition("?")[2].partition("#")[0]
        return self._redact_query(decoded, depth + 1) != decoded

    def redact_argv(self, argv: Sequence[str]) -> list[str]:
        """A command line with secret-looking arguments masked: ``--db-password=x``,
        ``--db-password x``, ``PASSWORD=x``, and URL userinfo anywhere."""
        out: list[str] = []
        mask_next = False
        for arg in argv:
            if mask_next and not arg.startswith("-"):
                out.append(self.mask)
                mask_next = False
                continue
            mask_next = False
            name, sep, _ = arg.partition("=")
            if arg.startswith("-") and not sep and self.is_secret(arg.lstrip("-")):
                mask_next = True
                out.append(arg)
            elif sep and self.is_secret(name.lstrip("-")):
                out.append(f"{name}={self.mask}")
            else:
                out.append(self.scrub_text(arg))
        return out

    # -- values ----------------------------------------------------------------------------------

    def redact(self, value: Any, depth: int = 0) -> Any:
        """*value* with secrets masked, ready to render: plain containers (copies), native
        scalars, scrubbed strings, and ``repr`` strings for everything else.

        Iterative (an explicit stack), so no nesting depth can exhaust the interpreter's; a
        container inside itself is logged as :data:`CIRCULAR`, one deeper than
        :data:`MAX_DEPTH` as :data:`DEEP`.
        """
        result: list[Any] = [None]
        # (value, target container, slot in it, depth); an exit marker has target None.
        stack: list[tuple[Any, Any, Any, int]] = [(value, result, 0, depth)]
        on_path: set[int] = set()
        keep_alive: list[Any] = []  # ids stay unique while the objects they name live
        mask = self.mask
        while stack:
            item, target, slot, level = stack.pop()
            if target is None:  # leaving a container: item is its id, slot a tuple to make
                on_path.discard(item)
                if slot is not None:
                    parent, key = slot
                    parent[key] = tuple(parent[key])
                continue
            kind = type(item)
            if kind is str:
                target[slot] = self.scrub_text(item)
                continue
            if kind in _SCALARS:
                target[slot] = item
                continue
            pairs, sequence = self._children(item)
            if pairs is None and sequence is None:
                target[slot] = self._leaf(item)
                continue
            ident = id(item)
            if ident in on_path:
                target[slot] = CIRCULAR
                continue
            if level >= MAX_DEPTH:
                target[slot] = DEEP
                continue
            keep_alive.append(item)
            on_path.add(ident)
            if pairs is not None:
                new_dict: dict[Any, Any] = {}
                target[slot] = new_dict
                stack.append((ident, None, None, 0))
                for key, child in pairs:
                    key = self._key(key)
                    if self.is_secret(key):
                        new_dict[key] = mask
                    else:
                        new_dict[key] = None
                        stack.append((child, new_dict, key, level + 1))
                continue
            assert sequence is not None
            if (
                len(sequence) == 2
                and isinstance(sequence[0], str | bytes)
                and isinstance(item, tuple | list)
                and self.is_secret(sequence[0])
            ):
                name = self._leaf(sequence[0])  # a (name, value) header pair
                target[slot] = (name, mask) if isinstance(item, tuple) else [name, mask]
                on_path.discard(ident)
                continue
            new_list: list[Any] = [None] * len(sequence)
            target[slot] = new_list
            stack.append((ident, None, (target, slot) if kind is tuple else None, 0))
            for index, child in enumerate(sequence):
                stack.append((child, new_list, index, level + 1))
        return result[0]

    @staticmethod
    def _children(value: Any) -> tuple[Any, Any]:
        """``(pairs, None)`` for a mapping-like value, ``(None, items)`` for a sequence-like
        one, ``(None, None)`` for a leaf. Generators and iterators are leaves: logging must not
        consume the caller's."""
        if isinstance(value, dict):
            return list(value.items()), None
        if isinstance(value, list | tuple):
            return None, value
        if isinstance(value, str | bytes | bytearray | memoryview):
            return None, None
        if isinstance(value, Mapping):
            return list(value.items()), None
        if isinstance(value, Set):
            return None, sorted(value, key=safe_repr)
        if isinstance(value, Sequence):
            return None, list(value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return [(f.name, getattr(value, f.name, None)) for f in dataclasses.fields(value)], None
        attributes = getattr(type(value), "__attrs_attrs__", None)
        if attributes is not None:
            return [(a.name, getattr(value, a.name, None)) for a in attributes], None
        items = getattr(value, "items", None)
        if callable(items) and callable(getattr(value, "keys", None)):  # werkzeug's Headers
            return list(items()), None
        return None, None

    def _leaf(self, value: Any) -> Any:
        kind = type(value)
        if isinstance(value, str):  # str.__str__: a subclass's own __str__ may raise
            return self.scrub_text(value if kind is str else str.__str__(value))
        if kind in _SCALARS or isinstance(value, _NATIVE):
            if kind is not int and kind is not bool and isinstance(value, int | float):
                # An int or float subclass (not an enum) renders as its plain number.
                return (
                    value
                    if isinstance(value, enum.Enum)
                    else (int(value) if isinstance(value, int) else float(value))
                )
            return value
        if isinstance(value, bytes | bytearray | memoryview):
            return self.scrub_text(bytes(value).decode("utf-8", "backslashreplace"))
        return self.scrub_text(safe_repr(value))

    @staticmethod
    def _key(key: Any) -> Any:
        if type(key) is str or key is None or type(key) in _SCALARS:
            return key
        if isinstance(key, bytes | bytearray):
            return bytes(key).decode("utf-8", "backslashreplace")
        if isinstance(key, str):
            return str(key)
        return safe_repr(key)

    # -- the processor ---------------------------------------------------------------------------

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        try:
            return self._redact_event(event_dict, None)
        except Exception as exc:
            return self._unrenderable(event_dict, exc)

    def redact_untrusted(self, event_dict: EventDict, trusted: frozenset[str]) -> EventDict:
        """Like a call, but only for keys outside *trusted* (set operations, done in C)."""
        if event_dict.keys() <= trusted:  # the usual case: nothing but the caller's own keys
            return event_dict
        try:
            return self._redact_event(event_dict, event_dict.keys() - trusted)
        except Exception as exc:
            return self._unrenderable(event_dict, exc)

    def _redact_event(self, event_dict: EventDict, keys: Iterable[str] | None) -> EventDict:
        verdicts = self._verdicts
        for key in event_dict if keys is None else keys:
            value = event_dict[key]
            # Every log line passes here: known keys cost one dict lookup, numbers no more.
            verdict = verdicts.get(key)
            if verdict is None:
                verdict = self.is_secret(key)
            if verdict:
                event_dict[key] = self.mask
            elif key in _SKIPPED_KEYS:
                continue
            elif type(value) is str:
                if "=" in value or ":" in value:
                    event_dict[key] = self.scrub_text(value)
            elif type(value) not in _SCALARS:
                event_dict[key] = self.redact(value, 1)
        return event_dict

    def _unrenderable(self, event_dict: EventDict, exc: Exception) -> EventDict:
        """What is logged when an event cannot even be walked: its level and a note."""
        from obs.selfreport import report_internal_error

        report_internal_error("logging", exc)
        kept = {
            k: event_dict[k] for k in ("level", "logger", "service", "timestamp") if k in event_dict
        }
        return {
            "event": "log event dropped: it could not be rendered",
            **{k: v for k, v in kept.items() if type(v) is str},
            "obs_error": f"{type(exc).__name__}",
        }
