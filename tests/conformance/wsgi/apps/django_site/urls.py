"""The site's URLconf as Django's tutorial builds it: ``include()`` of an app's URLconf,
``re_path`` with named groups at the top and inside an ``include()``."""

from __future__ import annotations

from django.urls import include, path, re_path

from django_site import views
from obs.django import metrics_view

urlpatterns = [
    path("polls/", include("django_site.polls.urls")),
    re_path(r"^archive/(?P<year>[0-9]{4})/$", views.archive),
    re_path(r"^v2/", include([re_path(r"^articles/(?P<slug>[\w-]+)/$", views.article)])),
    path("boom", views.boom),
    path("missing", views.missing),
    path("own-id", views.own_id),
    path("stream", views.stream),
    path("metrics", metrics_view),
]
