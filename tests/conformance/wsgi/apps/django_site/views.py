from __future__ import annotations

from collections.abc import Iterator

import structlog
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

log = structlog.get_logger("site")


def detail(request: HttpRequest, question_id: int) -> JsonResponse:
    user = request.GET.get("user")
    if user is not None:  # a view binding its own context, as apps do for the user
        structlog.contextvars.bind_contextvars(user_id=user)
    log.info("question viewed", question_id=question_id)
    return JsonResponse({"question": question_id})


def results(request: HttpRequest, question_id: str) -> JsonResponse:
    return JsonResponse({"results": question_id})


def archive(request: HttpRequest, year: str) -> HttpResponse:
    return HttpResponse(year)


def article(request: HttpRequest, slug: str) -> HttpResponse:
    return HttpResponse(slug)


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom")


def missing(request: HttpRequest) -> HttpResponse:
    raise Http404("no such thing")


def own_id(request: HttpRequest) -> HttpResponse:
    response = HttpResponse("mine")
    response["X-Request-ID"] = "chosen-by-the-view"
    return response


def stream(request: HttpRequest) -> StreamingHttpResponse:
    def chunks() -> Iterator[bytes]:
        for i in range(3):
            log.info("chunk", i=i)
            yield f"{i}\n".encode()

    return StreamingHttpResponse(chunks(), content_type="text/plain")
