"""Path segments a route template names as secrets, masked in the access line.

``/reset/{token}`` serves ``/reset/RESETSECRET123``: the route label keeps the template, and the
logged path must not keep the token. The template's parameters are read once per template
(:func:`secret_path_mask`, cached by :class:`obs.http.access_line.AccessLog`), in every syntax
obs's route labels carry: Starlette, FastAPI and Litestar ``{name}`` and ``{name:converter}``,
Flask and Django ``<name>``, ``<converter:name>`` and ``<converter(args):name>``, and the ``{name}``
Django's ``re_path`` routes become (:func:`obs.integrations.django.regex_template`). A parameter
is secret when its name is a secret key (:meth:`obs.logs.redaction.RedactSecrets.is_secret`:
``token``, ``api_key``, ``reset_token``, ``session_id``...); a template without one costs its
requests nothing but the cache lookup.
"""

from __future__ import annotations

import re
from collections.abc import Callable

#: A parameter of a template: ``{...}`` (Starlette, FastAPI, Litestar) or ``<...>`` (Flask,
#: Django).
_PARAMETER = re.compile(r"\{(?P<brace>[^{}/]*)\}|<(?P<angle>[^<>/]*)>")
#: Converters whose values span several segments (``{rest:path}``, ``<path:rest>``).
_MULTI_SEGMENT = frozenset({"path"})


def _name_and_converter(match: re.Match[str]) -> tuple[str, str]:
    brace = match["brace"]
    if brace is not None:  # {name} or {name:converter}
        name, _, converter = brace.partition(":")
    else:  # <name>, <converter:name>, <converter(arguments):name>
        converter, _, name = match["angle"].rpartition(":")
        converter = converter.partition("(")[0]
    return name.strip(), converter.strip().lower()


class SecretPathMask:
    """Masks, in a path served by one template, each segment holding a secret parameter."""

    __slots__ = ("mask", "pattern", "secret_groups")

    def __init__(self, pattern: re.Pattern[str], secret_groups: tuple[int, ...], mask: str):
        self.pattern = pattern
        self.secret_groups = secret_groups
        self.mask = mask

    def __call__(self, path: str) -> str:
        """*path* with each segment that holds a secret parameter replaced by the mask; the
        whole path masked when it does not match the template (then obs cannot tell where the
        secret is)."""
        match = self.pattern.match(path)
        if match is None:
            return self.mask
        spans: list[tuple[int, int]] = []
        for group in self.secret_groups:
            start, end = match.span(group)
            if start == end:
                continue
            # Whole segments: "{token}.json" masks the segment, extension included.
            start = path.rfind("/", 0, start) + 1
            found = path.find("/", end)
            end = len(path) if found < 0 else found
            if spans and start <= spans[-1][1]:
                spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
            else:
                spans.append((start, end))
        parts: list[str] = []
        done = 0
        for start, end in spans:
            parts += (path[done:start], self.mask)
            done = end
        parts.append(path[done:])
        return "".join(parts)


def secret_path_mask(
    template: str, is_secret: Callable[[str], bool], mask: str
) -> SecretPathMask | None:
    """The mask of paths served by *template*, or ``None`` when none of its parameters is
    secret (the usual case: ``/users/{user_id}``)."""
    if "{" not in template and "<" not in template:
        return None
    pieces: list[str] = []
    secret_groups: list[int] = []
    done = 0
    for group, match in enumerate(_PARAMETER.finditer(template), start=1):
        name, converter = _name_and_converter(match)
        pieces.append(re.escape(template[done : match.start()]))
        pieces.append("(.*?)" if converter in _MULTI_SEGMENT else "([^/]+?)")
        if name and is_secret(name):
            secret_groups.append(group)
        done = match.end()
    if not secret_groups:
        return None
    rest = template[done:]
    pieces.append(re.escape(rest.rstrip("/")) + "/?")
    # Anything before the template: a mount's or a proxy's prefix (root_path, SCRIPT_NAME).
    pattern = re.compile("(?:.*?)" + "".join(pieces) + r"\Z", re.DOTALL)
    return SecretPathMask(pattern, tuple(secret_groups), mask)
