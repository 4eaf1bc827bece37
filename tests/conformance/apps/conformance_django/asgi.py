from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

from obs.asgi import ObservabilityMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "conformance_django.settings")
app = ObservabilityMiddleware(get_asgi_application())
