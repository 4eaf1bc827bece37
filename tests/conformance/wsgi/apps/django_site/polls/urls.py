from __future__ import annotations

from django.urls import path, re_path

from django_site import views

app_name = "polls"
urlpatterns = [
    path("<int:question_id>/", views.detail, name="detail"),
    re_path(r"^(?P<question_id>[0-9]+)/results/$", views.results, name="results"),
]
