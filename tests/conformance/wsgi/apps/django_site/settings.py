"""Settings of the conformance site: no database, obs first in MIDDLEWARE."""

from __future__ import annotations

import obs

obs.configure_logging(service_name="django-site")

SECRET_KEY = "conformance-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "django_site.urls"
MIDDLEWARE = ["obs.django.ObservabilityMiddleware", "django.middleware.common.CommonMiddleware"]
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, object] = {}
USE_TZ = True
LOGGING_CONFIG = None  # obs writes the log lines
