"""Django under its ASGI handler, wrapped in obs.asgi, with obs.django's middleware too."""

from __future__ import annotations

import obs

obs.configure_logging(service_name="conformance-django")

SECRET_KEY = "test-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "conformance_django.urls"
MIDDLEWARE = ["obs.django.ObservabilityMiddleware", "django.middleware.common.CommonMiddleware"]
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, object] = {}
USE_TZ = True
LOGGING_CONFIG = None
