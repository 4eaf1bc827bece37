"""Settings of the example: no database, no templates, obs first in MIDDLEWARE."""

from __future__ import annotations

import os

import obs

obs.configure_logging(service_name="django-example")
LOGGING_CONFIG = None  # obs owns the logging pipeline: Django must not add handlers of its own

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
ROOT_URLCONF = "django_project.urls"
USE_TZ = True

MIDDLEWARE = [
    "obs.django.ObservabilityMiddleware",  # first, so it sees every request and response
    "django.middleware.common.CommonMiddleware",
]
