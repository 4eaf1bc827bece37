"""Settings of the test project: no database, no templates, obs first in MIDDLEWARE."""

from __future__ import annotations

import obs

obs.configure_logging(service_name="django-test")

SECRET_KEY = "test-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "djangoproject.urls"
MIDDLEWARE = ["obs.django.ObservabilityMiddleware", "django.middleware.common.CommonMiddleware"]
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, object] = {}
USE_TZ = True
# obs writes the log lines; Django must not install handlers of its own.
LOGGING_CONFIG = None
