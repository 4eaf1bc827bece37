"""A tiny HTTP GET for the checks (the standard library: the doctor needs no extra package)."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from obs.exceptions import ConfigError


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


def get(url: str, headers: dict[str, str] | None = None, timeout: float = 5.0) -> Response:
    """GET *url*; an HTTP error status is a response too, a transport error an ``OSError``."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return _response(answer.status, answer.headers, answer.read())
    except urllib.error.HTTPError as error:
        return _response(error.code, error.headers, error.read())


def _response(status: int, headers: object, body: bytes) -> Response:
    items = headers.items() if hasattr(headers, "items") else []
    return Response(status, {k.lower(): v for k, v in items}, body.decode("utf-8", "replace"))


def check_url(option: str, url: str) -> str:
    """*url* if it is an ``http://`` or ``https://`` URL with a host; else a ``ConfigError``
    saying what to pass (a bare ``host:port`` gets ``http://`` put in front)."""
    if "://" not in url:
        raise ConfigError(f"{option} {url} has no scheme; pass {option} http://{url}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # a port that is not a number raises here
    except ValueError as exc:
        raise ConfigError(
            f"{option} {url} is not a URL ({exc}); pass e.g. http://127.0.0.1:8000"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{option} {url} is not an http:// or https:// URL with a host; pass e.g. http://127.0.0.1:8000"
        )
    return url
