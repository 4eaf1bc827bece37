from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path

from obs.django import metrics_view


def question(request: HttpRequest, question_id: int) -> JsonResponse:
    logging.getLogger("conformance").warning("handler")  # a standard-library line
    return JsonResponse({"question_id": question_id})


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom")


polls = [path("<int:question_id>/", question)]
urlpatterns = [
    path("polls/", include(polls)),
    path("boom", boom),
    path("metrics", metrics_view),
]
