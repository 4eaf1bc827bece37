from __future__ import annotations

from django.urls import path

from django_project import views
from obs.django import metrics_view

urlpatterns = [
    path("polls/<int:question_id>/", views.question),
    path("metrics", metrics_view),
]
