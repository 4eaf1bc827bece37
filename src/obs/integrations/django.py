"""Django: a middleware listed first in ``MIDDLEWARE``, for the WSGI and the ASGI handler.

    MIDDLEWARE = ["obs.django.ObservabilityMiddleware", ...]
    urlpatterns = [path("metrics", obs.django.metrics_view), ...]

Routes come from the URL resolver (``/polls/<int:question_id>/``; ``re_path`` regexes made
readable by :func:`regex_template`; the language prefix of ``i18n_patterns`` as
:data:`LANGUAGE_PREFIX`), view exceptions from ``process_exception`` (recorded only
when they end in a 5xx, so ``Http404`` is no error), and a request is finished when Django's
server closes its response. Options go in the ``OBS_MIDDLEWARE`` setting, a dict of
:class:`obs.http.observer.HttpObserver` keywords. Inside :class:`obs.wsgi.ObservabilityMiddleware`
the middleware only reports the route and the exception to it, so a request is never counted
twice.

Each request runs in a context of its own
(:meth:`~obs.http.observation.RequestObservation.own_context`): the views, the streaming body
and ``close()`` see the request's ids and what the view binds, nothing of the request before,
and the server's context is left as it was. Django's own ``django.request`` lines ("Not Found:
/x") are written inside it too, so they carry the request id. The response carries exactly one
``X-Request-ID``, the request's (one the view set is replaced), as in every obs integration.

``metrics_view`` serves what the middleware records into (``OBS_MIDDLEWARE["registry"]``, else
the default registry or the multiprocess aggregate); ``OBS_METRICS = {"username": ...,
"password": ...}`` turns on basic auth, as :func:`make_metrics_view` does for views of your own.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from obs.http.describe import describe_cgi, describe_cgi_length, header_bytes
from obs.http.observation import RequestObservation
from obs.http.observer import HttpObserver
from obs.integrations._compat import is_django_locale_prefix
from obs.integrations.asgi_routes import mounted_template
from obs.logs.context import current_request_id
from obs.logs.pipeline import mark_reported
from obs.prometheus.exposition import MetricsEndpoint
from obs.wsgi import EXCEPTION_KEY, OBSERVATION_KEY

__all__ = [
    "LANGUAGE_PREFIX",
    "ObservabilityMiddleware",
    "make_metrics_view",
    "metrics_view",
    "regex_template",
    "route_template",
]

#: What the language prefix of ``i18n_patterns`` (``fr/``) becomes in a route template.
LANGUAGE_PREFIX = "{language}/"
_EXCEPTION_ATTR = "_obs_exception"
#: Characters that only a regex route (``re_path``) contains; ``path()`` routes (Django warns
#: about ``^``, ``$`` and ``(?P<`` in them) go through unchanged.
_REGEX_SYNTAX = frozenset("^$()[]\\")


@functools.lru_cache(maxsize=1024)  # one entry per route of the URLconf
def regex_template(route: str) -> str:
    """A ``re_path`` route as a readable template, by one rule:

    named groups become ``{name}``, unnamed ones ``{0}``, ``{1}``... (by position); the anchors
    ``^``, ``$``, ``\\A``, ``\\Z`` are dropped; an escaped character stands for itself (``\\.``
    is ``.``); everything else (classes, quantifiers, ``(?:...)`` with its content converted)
    is kept as written. So ``^archive/(?P<year>[0-9]{4})/$`` is ``archive/{year}/``. The
    template is never longer than the regex, and there are as many as the URLconf has routes:
    bounded.
    """
    return _convert(route, [0])


def _convert(route: str, position: list[int]) -> str:
    out: list[str] = []
    i, n = 0, len(route)
    while i < n:
        char = route[i]
        if char == "\\" and i + 1 < n:
            escaped = route[i + 1]
            if escaped not in "AZ":
                out.append(char + escaped if escaped.isalnum() else escaped)
            i += 2
        elif char in "^$":
            i += 1
        elif char == "[":
            end = _class_end(route, i)
            out.append(route[i:end])
            i = end
        elif char == "(":
            end = _group_end(route, i)
            inner = route[i + 1 : end - 1]
            if inner.startswith("?P<") and ">" in inner:
                out.append("{" + inner[3 : inner.index(">")] + "}")
            elif inner.startswith("?:"):
                out.append("(?:" + _convert(inner[2:], position) + ")")
            elif inner.startswith("?"):  # look-around, flags: as written
                out.append(route[i:end])
            else:
                out.append("{" + str(position[0]) + "}")
                position[0] += 1
            i = end
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _class_end(route: str, start: int) -> int:
    """The index after the ``]`` closing the character class at *start*."""
    i = start + 1
    if i < len(route) and route[i] == "^":
        i += 1
    if i < len(route) and route[i] == "]":  # a leading ] is a literal
        i += 1
    while i < len(route) and route[i] != "]":
        i += 2 if route[i] == "\\" else 1
    return min(i + 1, len(route))


def _group_end(route: str, start: int) -> int:
    """The index after the ``)`` closing the group at *start*."""
    depth, i = 0, start
    while i < len(route):
        char = route[i]
        if char == "\\":
            i += 2
            continue
        if char == "[":
            i = _class_end(route, i)
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(route)


def route_template(request: Any) -> str | None:
    """The route the URL resolver matched (``/polls/<int:question_id>/``), or ``None``.

    The language prefix of ``i18n_patterns`` (``/fr/``, ``/en/``) is :data:`LANGUAGE_PREFIX`
    (``/{language}/about/``): one template per view whatever the language; a URL without the
    prefix (the default language with ``prefix_default_language=False``) keeps none.
    """
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None)
    if not route:
        return None
    route = str(route)
    tried = getattr(match, "tried", None)  # the matched chain of patterns comes last
    if tried and tried[-1] and is_django_locale_prefix(getattr(tried[-1][0], "pattern", None)):
        route = _without_language(route, tried[-1])
    if not _REGEX_SYNTAX.isdisjoint(route):
        route = regex_template(route)
    return "/" + route.lstrip("/")


def _without_language(route: str, chain: list[Any]) -> str:
    """*route* with the language prefix the request matched as :data:`LANGUAGE_PREFIX`: the
    route of the patterns after the prefix, joined as Django joins them (a regex's ``^``
    dropped after the first)."""
    rest = ""
    for step in chain[1:]:
        part = str(getattr(step, "pattern", ""))
        rest = part if not rest else rest + part.removeprefix("^")
    if route == rest:  # an unprefixed URL: the default language, prefix_default_language=False
        return route
    return LANGUAGE_PREFIX + rest.removeprefix("^")


def _route_of(request: Any, _root: str) -> str | None:
    """:func:`route_template` as a route source's getter (Django has no mount root to keep)."""
    return route_template(request)


def _mounted_route_of(source: tuple[Any, Any], root: str) -> str | None:
    """:func:`route_template` under obs.asgi: the mounts' templates of an outer ASGI app first."""
    request, scope = source
    template = route_template(request)
    return None if template is None else mounted_template(scope, root, template)


class ObservabilityMiddleware:
    """Request ids, an access line and RED metrics for every request Django handles."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        from django.conf import settings

        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
        self.observer = HttpObserver(**getattr(settings, "OBS_MIDDLEWARE", {}))

    def __call__(self, request: Any) -> Any:
        if self.is_async:
            return self.__acall__(request)
        outer = request.META.get(OBSERVATION_KEY)
        if outer is not None:  # obs.wsgi observes this request: tell it what only we know
            outer.route_source = (_route_of, request, "")
            response = self.get_response(request)
            _report_to_wsgi(request, response)
            return response
        observation = self._begin(request)
        context = observation.own_context()
        try:
            response = context.run(self._respond, request)
        except BaseException as exc:
            context.run(_abandon, observation, request, exc)
            raise
        self._observe_response(observation, context, request, response)
        return response

    async def __acall__(self, request: Any) -> Any:
        scope = getattr(request, "scope", None)
        if scope is not None and OBSERVATION_KEY in scope:
            # obs.asgi observes this request around Django's ASGI handler: report to it, the
            # route under the mounts Django may sit under (Mount("/dj", app=...)).
            outer = scope[OBSERVATION_KEY]
            root = "" if outer.route_source is None else outer.route_source[2]
            outer.route_source = (_mounted_route_of, (request, scope), root)
            response = await self.get_response(request)
            _report(scope, request, response)
            return response
        observation = self._begin(request)
        context = observation.own_context()
        try:
            # A task of its own runs the request in its own context (a task copies nothing
            # back), so what a view binds ends with the request.
            response = await asyncio.create_task(self._respond_async(request), context=context)
        except BaseException as exc:
            context.run(_abandon, observation, request, exc)
            raise
        self._observe_response(observation, context, request, response)
        return response

    def _respond(self, request: Any) -> Any:
        response = self.get_response(request)
        _log_response(request, response)
        return response

    async def _respond_async(self, request: Any) -> Any:
        response = await self.get_response(request)
        _log_response(request, response)
        return response

    def process_exception(self, request: Any, exception: BaseException) -> None:
        setattr(request, _EXCEPTION_ATTR, exception)
        # When the access line will carry the traceback, django.request's line names the
        # request instead of repeating it (the observer is an outer obs.wsgi/obs.asgi one if
        # it observes this request, else ours).
        scope = getattr(request, "scope", None)
        outer = request.META.get(OBSERVATION_KEY) or (
            scope.get(OBSERVATION_KEY) if isinstance(scope, dict) else None
        )
        if (self.observer if outer is None else outer.observer).writes_access_line(request.path):
            mark_reported(exception, current_request_id())

    def _begin(self, request: Any) -> RequestObservation:
        meta = request.META
        observation = RequestObservation(
            self.observer,
            request.method or "GET",
            request.path,
            header_bytes(meta.get(self.observer.request_id_environ_key)),
            header_bytes(meta.get("HTTP_TRACEPARENT")),
            bind_ids=False,
        )
        if self.observer.header_labels:
            observation.labels = self.observer.header_label_values(
                lambda name: meta.get("HTTP_" + name.upper().replace("-", "_"))
            )
        if self.observer.access_log is not None:
            describe_cgi(observation, meta)
        elif self.observer.record_body_sizes:
            describe_cgi_length(observation, meta)
        observation.route_source = (_route_of, request, "")
        return observation

    def _observe_response(
        self,
        observation: RequestObservation,
        context: contextvars.Context,
        request: Any,
        response: Any,
    ) -> None:
        observation.status = response.status_code
        if observation.request_id is not None:
            response[self.observer.request_id_header] = (
                observation.request_id
            )  # replaces the view's own
        _note_exception(observation, request)
        observation.route = route_template(request)
        length = response.get("Content-Length")
        if length is not None and length.isdigit():
            observation.bytes_out = int(length)
        elif not response.streaming:
            observation.bytes_out = len(response.content)
        elif getattr(response, "is_async", False):
            response.streaming_content = _count_async(
                response.streaming_content, observation, context
            )
        else:
            response.streaming_content = _count(response.streaming_content, observation, context)
        close = response.close

        def close_and_finish() -> None:
            try:
                context.run(close)
            finally:
                context.run(observation.settle)

        response.close = close_and_finish


def _log_response(request: Any, response: Any) -> None:
    """Write Django's own line for a 4xx/5xx ("Not Found: /x") now, in the request's context,
    so that it carries the request id; Django then sees it logged and does not repeat it."""
    if response.status_code >= 400:
        from django.utils.log import log_response

        log_response(
            "%s: %s", response.reason_phrase, request.path, response=response, request=request
        )


def _note_exception(observation: RequestObservation, request: Any) -> None:
    exception = getattr(request, _EXCEPTION_ATTR, None)
    if exception is not None and observation.status >= 500:
        observation.fail(exception)


def _abandon(observation: RequestObservation, request: Any, exc: BaseException) -> None:
    observation.fail(exc)
    observation.settle()  # the route read from the request (its route source)
    observation.note_on(exc)


def _report_to_wsgi(request: Any, response: Any) -> None:
    _report(request.META, request, response)


def _report(target: dict[str, Any], request: Any, response: Any) -> None:
    """Tell an outer obs middleware (its environ or scope) the exception Django handled; the
    route it reads from the request itself (its route source, set when the request came in)."""
    exception = getattr(request, _EXCEPTION_ATTR, None)
    if exception is not None and response.status_code >= 500:
        target[EXCEPTION_KEY] = exception


def _count(
    chunks: Iterable[bytes], observation: RequestObservation, context: contextvars.Context
) -> Iterator[bytes]:
    """The streaming body, counted, each chunk made in the request's context; an exception
    partway is recorded (the access line carries it, before the server logs it) and raised."""
    run = context.run
    try:
        iterator = run(iter, chunks)
        chunk = run(next, iterator, None)
    except Exception as exc:
        run(_failed_midway, observation, exc)
        raise
    while chunk is not None:
        observation.bytes_out += len(chunk)
        try:
            yield chunk
        except GeneratorExit:  # the server stopped before the end: the client went away
            _went_away(observation)
            raise
        try:
            chunk = run(next, iterator, None)
        except Exception as exc:
            run(_failed_midway, observation, exc)
            raise


def _went_away(observation: RequestObservation) -> None:
    """A streaming body closed before its end: 499 with the bytes sent, as under obs.wsgi,
    unless the response has no body to miss."""
    if observation.has_body():
        observation.went_away()


async def _count_async(
    chunks: AsyncIterator[bytes], observation: RequestObservation, context: contextvars.Context
) -> AsyncIterator[bytes]:
    """:func:`_count` for an async body: each chunk is made by a task in the request's context
    (Django's ASGI handler iterates the body in a task of its own, outside it)."""
    iterator = aiter(chunks)
    while True:
        try:
            chunk = await asyncio.create_task(_next_chunk(iterator), context=context)
        except Exception as exc:
            context.run(_failed_midway, observation, exc)
            raise
        if chunk is None:
            return
        observation.bytes_out += len(chunk)
        try:
            yield chunk
        except GeneratorExit:
            _went_away(observation)
            raise


async def _next_chunk(iterator: AsyncIterator[bytes]) -> bytes | None:
    return await anext(iterator, None)


def _failed_midway(observation: RequestObservation, exc: BaseException) -> None:
    """The streaming body raised after the response started: the client got the status that
    was sent and part of the body; the exception is recorded and the request finished."""
    observation.fail(exc)
    observation.settle()
    observation.note_on(exc)


def make_metrics_view(
    registry: Any = None, *, username: str | None = None, password: str | None = None
) -> Callable[[Any], Any]:
    """A Django view serving *registry* (default: the default registry, or the aggregate of all
    workers in multiprocess mode), with HTTP basic auth when *username* and *password* are
    given: :class:`obs.prometheus.exposition.MetricsEndpoint` behind a view."""
    endpoint = MetricsEndpoint(registry, username=username, password=password)

    def metrics(request: Any) -> Any:
        return _serve(endpoint, request)

    return metrics


def metrics_view(request: Any) -> Any:
    """A Django view serving what the middleware records into (``OBS_MIDDLEWARE["registry"]``,
    else the default registry, the aggregate of all workers in multiprocess mode); basic auth
    from ``OBS_METRICS = {"username": ..., "password": ...}``. Settings are read per scrape,
    so ``override_settings`` applies."""
    from django.conf import settings

    auth = getattr(settings, "OBS_METRICS", {})
    endpoint = MetricsEndpoint(
        getattr(settings, "OBS_MIDDLEWARE", {}).get("registry"),
        username=auth.get("username"),
        password=auth.get("password"),
    )
    return _serve(endpoint, request)


def _serve(endpoint: MetricsEndpoint, request: Any) -> Any:
    from django.http import HttpResponse

    headers = request.headers
    scrape = endpoint.answer(
        request.method or "GET",
        headers.get("Accept"),
        headers.get("Accept-Encoding"),
        headers.get("Authorization"),
    )
    response = HttpResponse(scrape.body, status=scrape.status)
    for name, value in scrape.headers:
        response[name] = value
    return response
