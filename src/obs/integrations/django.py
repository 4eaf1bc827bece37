"""Django: a middleware listed first in ``MIDDLEWARE``, for the WSGI and the ASGI handler.

    MIDDLEWARE = ["obs.django.ObservabilityMiddleware", ...]
    urlpatterns = [path("metrics", obs.django.metrics_view), ...]

Routes come from the URL resolver (``/polls/<int:question_id>/``), view exceptions from
``process_exception`` (recorded only when they end in a 5xx, so ``Http404`` is no error), and a
request is finished when Django's server closes its response. Options go in the
``OBS_MIDDLEWARE`` setting, a dict of :class:`obs._http.HttpObserver` keywords. Inside
:class:`obs.wsgi.ObservabilityMiddleware` the middleware only reports the route and the
exception to it, so a request is never counted twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from obs._http import HttpObserver, RequestObservation
from obs.exposition import render
from obs.wsgi import EXCEPTION_KEY, OBSERVATION_KEY, ROUTE_KEY

__all__ = ["ObservabilityMiddleware", "metrics_view", "route_template"]

_EXCEPTION_ATTR = "_obs_exception"


def route_template(request: Any) -> str | None:
    """The route the URL resolver matched (``/polls/<int:question_id>/``), or ``None``."""
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None)
    if not route:
        return None
    return "/" + str(route).lstrip("^/")


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
            response = self.get_response(request)
            _report_to_wsgi(request, response)
            return response
        obs = self._begin(request)
        try:
            response = self.get_response(request)
        except BaseException as exc:
            _abandon(obs, request, exc)
            raise
        finally:
            obs.unbind()
        self._observe_response(obs, request, response)
        return response

    async def __acall__(self, request: Any) -> Any:
        obs = self._begin(request)
        try:
            response = await self.get_response(request)
        except BaseException as exc:
            _abandon(obs, request, exc)
            raise
        finally:
            obs.unbind()
        self._observe_response(obs, request, response)
        return response

    def process_exception(self, request: Any, exception: BaseException) -> None:
        setattr(request, _EXCEPTION_ATTR, exception)

    def _begin(self, request: Any) -> RequestObservation:
        meta = request.META
        request_id = meta.get("HTTP_X_REQUEST_ID")
        traceparent = meta.get("HTTP_TRACEPARENT")
        obs = RequestObservation(
            self.observer,
            request.method or "GET",
            request.path,
            raw_request_id=None if request_id is None else request_id.encode("latin-1", "replace"),
            traceparent=None if traceparent is None else traceparent.encode("latin-1", "replace"),
        )
        if self.observer.access_log:
            obs.query = meta.get("QUERY_STRING", "")
            obs.client = meta.get("REMOTE_ADDR") or None
            obs.user_agent = meta.get("HTTP_USER_AGENT")
            try:
                obs.bytes_in = max(int(meta.get("CONTENT_LENGTH") or 0), 0)
            except ValueError:
                pass
        return obs

    def _observe_response(self, obs: RequestObservation, request: Any, response: Any) -> None:
        obs.status = response.status_code
        if obs.request_id is not None:
            response["X-Request-ID"] = obs.request_id
        _note_exception(obs, request)
        obs.route = route_template(request)
        length = response.get("Content-Length")
        if length is not None and length.isdigit():
            obs.bytes_out = int(length)
        elif not response.streaming:
            obs.bytes_out = len(response.content)
        elif getattr(response, "is_async", False):
            response.streaming_content = _count_async(response.streaming_content, obs)
        else:
            response.streaming_content = _count(response.streaming_content, obs)
        close = response.close

        def close_and_finish() -> None:
            try:
                close()
            finally:
                obs.finish()

        response.close = close_and_finish


def _note_exception(obs: RequestObservation, request: Any) -> None:
    exception = getattr(request, _EXCEPTION_ATTR, None)
    if exception is not None and obs.status >= 500:
        obs.fail(exception)


def _abandon(obs: RequestObservation, request: Any, exc: BaseException) -> None:
    obs.fail(exc)
    obs.route = route_template(request)
    obs.finish()


def _report_to_wsgi(request: Any, response: Any) -> None:
    meta = request.META
    meta[ROUTE_KEY] = route_template(request)
    exception = getattr(request, _EXCEPTION_ATTR, None)
    if exception is not None and response.status_code >= 500:
        meta[EXCEPTION_KEY] = exception


def _count(chunks: Iterable[bytes], obs: RequestObservation) -> Iterator[bytes]:
    for chunk in chunks:
        obs.bytes_out += len(chunk)
        yield chunk


async def _count_async(chunks: AsyncIterator[bytes], obs: RequestObservation) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        obs.bytes_out += len(chunk)
        yield chunk


def metrics_view(request: Any) -> Any:
    """A Django view serving the metrics (the aggregate of all workers in multiprocess mode)."""
    from django.http import HttpResponse

    body, headers = render(
        None, request.headers.get("Accept"), request.headers.get("Accept-Encoding")
    )
    response = HttpResponse(b"" if request.method == "HEAD" else body)
    for name, value in headers:
        response[name] = value
    return response
