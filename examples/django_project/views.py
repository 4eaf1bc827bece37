from __future__ import annotations

from django.http import Http404, HttpRequest, JsonResponse

import obs

log = obs.get_logger(__name__)


def question(request: HttpRequest, question_id: int) -> JsonResponse:
    if question_id > 100:
        raise Http404("no such question")
    log.info("question read", question_id=question_id)  # carries the request id
    return JsonResponse({"question_id": question_id})
