"""Django: a middleware listed first in ``MIDDLEWARE``, for the WSGI and the ASGI handler.

    MIDDLEWARE = ["obs.django.ObservabilityMiddleware", ...]
    urlpatterns = [path("metrics", obs.django.metrics_view), ...]

Routes come from the URL resolver (``/polls/<int:question_id>/``), view exceptions from
``process_exception`` (recorded only when they end in a 5xx, so ``Http404`` is no error), and a
request is finished when Django's server closes its response. Options go in the
``OBS_MIDDLEWARE`` setting, a dict of :class:`obs.http.observer.HttpObserver` keywords. Inside
:class:`obs.wsgi.ObservabilityMiddleware` the middleware only reports the route and the
exception to it, so a request is never counted twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from obs.http.describe import describe_cgi, header_bytes
from obs.http.observation import RequestObservation
from obs.http.observer import HttpObserver
from obs.prometheus.exposition import render
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
        observation = self._begin(request)
        try:
            response = self.get_response(request)
        except BaseException as exc:
            _abandon(observation, request, exc)
            raise
        finally:
            observation.unbind()
        self._observe_response(observation, request, response)
        return response

    async def __acall__(self, request: Any) -> Any:
        observation = self._begin(request)
        try:
            response = await self.get_response(request)
        except BaseException as exc:
            _abandon(observation, request, exc)
            raise
        finally:
            observation.unbind()
        self._observe_response(observation, request, response)
        return response

    def process_exception(self, request: Any, exception: BaseException) -> None:
        setattr(request, _EXCEPTION_ATTR, exception)

    def _begin(self, request: Any) -> RequestObservation:
        meta = request.META
        observation = RequestObservation(
            self.observer,
            request.method or "GET",
            request.path,
            header_bytes(meta.get(self.observer.request_id_environ_key)),
            header_bytes(meta.get("HTTP_TRACEPARENT")),
        )
        if self.observer.header_labels:
            observation.labels = self.observer.header_label_values(
                lambda name: meta.get("HTTP_" + name.upper().replace("-", "_"))
            )
        if self.observer.access_log is not None:
            describe_cgi(observation, meta)
        return observation

    def _observe_response(
        self, observation: RequestObservation, request: Any, response: Any
    ) -> None:
        observation.status = response.status_code
        if observation.request_id is not None:
            response[self.observer.request_id_header] = observation.request_id
        _note_exception(observation, request)
        observation.route = route_template(request)
        length = response.get("Content-Length")
        if length is not None and length.isdigit():
            observation.bytes_out = int(length)
        elif not response.streaming:
            observation.bytes_out = len(response.content)
        elif getattr(response, "is_async", False):
            response.streaming_content = _count_async(response.streaming_content, observation)
        else:
            response.streaming_content = _count(response.streaming_content, observation)
        close = response.close

        def close_and_finish() -> None:
            try:
                close()
            finally:
                observation.finish()

        response.close = close_and_finish


def _note_exception(observation: RequestObservation, request: Any) -> None:
    exception = getattr(request, _EXCEPTION_ATTR, None)
    if exception is not None and observation.status >= 500:
        observation.fail(exception)


def _abandon(observation: RequestObservation, request: Any, exc: BaseException) -> None:
    observation.fail(exc)
    observation.route = route_template(request)
    observation.finish()


def _report_to_wsgi(request: Any, response: Any) -> None:
    meta = request.META
    meta[ROUTE_KEY] = route_template(request)
    exception = getattr(request, _EXCEPTION_ATTR, None)
    if exception is not None and response.status_code >= 500:
        meta[EXCEPTION_KEY] = exception


def _count(chunks: Iterable[bytes], observation: RequestObservation) -> Iterator[bytes]:
    for chunk in chunks:
        observation.bytes_out += len(chunk)
        yield chunk


async def _count_async(
    chunks: AsyncIterator[bytes], observation: RequestObservation
) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        observation.bytes_out += len(chunk)
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
