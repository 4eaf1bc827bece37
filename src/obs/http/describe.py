"""What the access line says about a request (query, client, user agent, announced body size),
read from an ASGI scope or from a CGI-style dict: a WSGI environ or Django's ``request.META``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from obs.http.observation import RequestObservation


def header_bytes(value: str | None) -> bytes | None:
    """A CGI header value (WSGI strings carry the raw bytes as latin-1) as the bytes sent."""
    return None if value is None else value.encode("latin-1", "replace")


def cgi_path(meta: Mapping[str, Any]) -> str:
    """The full path of a CGI-style request (``SCRIPT_NAME`` + ``PATH_INFO``), decoded as UTF-8."""
    path: str = meta.get("SCRIPT_NAME", "") + meta.get("PATH_INFO", "")
    if not path.isascii():
        path = path.encode("latin-1", "replace").decode("utf-8", "replace")
    return path or "/"


def describe_cgi(observation: RequestObservation, meta: Mapping[str, Any]) -> None:
    """Fill in the access line's request fields from a WSGI environ or Django's ``META``."""
    get = meta.get
    query = get("QUERY_STRING")
    if query:
        observation.query = query
    client = get("REMOTE_ADDR")
    if client:
        port = get("REMOTE_PORT")
        observation.client = f"{client}:{port}" if port else client
    observation.user_agent = get("HTTP_USER_AGENT")
    describe_cgi_length(observation, meta)


def describe_cgi_length(observation: RequestObservation, meta: Mapping[str, Any]) -> None:
    """Set the request's ``bytes_in`` from ``CONTENT_LENGTH``, what the client announced (the
    request-size histogram needs it with the access line off too)."""
    length = meta.get("CONTENT_LENGTH")
    if length:
        try:
            observation.bytes_in = max(int(length), 0)
        except ValueError:
            pass


def describe_scope(
    observation: RequestObservation, scope: Mapping[str, Any], user_agent: bytes | None
) -> None:
    """Fill in the access line's request fields from an ASGI HTTP scope."""
    query = scope.get("query_string")
    if query:
        observation.query = query.decode("latin-1")
    client = scope.get("client")
    if client:
        observation.client = f"{client[0]}:{client[1]}"
    if user_agent is not None:
        observation.user_agent = user_agent.decode("latin-1")
