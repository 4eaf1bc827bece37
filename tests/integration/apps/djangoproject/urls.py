from __future__ import annotations

from django.urls import path
from djangoproject import views

from obs.django import metrics_view

urlpatterns = [
    path("polls/<int:question_id>/", views.question),
    path("api/users/<str:name>", views.user),
    path("boom", views.boom),
    path("stream", views.stream),
    path("stream-fails", views.stream_fails),
    path("astream", views.astream),
    path("longstream", views.longstream),
    path("metrics", metrics_view),
]
