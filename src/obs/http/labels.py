"""Bounded label values: route templates and methods that can never explode cardinality."""

from __future__ import annotations

import threading

from obs.metrics import KNOWN_METHODS, OTHER_METHOD, OVERFLOW_ROUTE, UNMATCHED_ROUTE

DEFAULT_MAX_ROUTES = 500

_METHODS = {m: m for m in KNOWN_METHODS} | {m.lower(): m for m in KNOWN_METHODS}


def method_label(method: str) -> str:
    """The method as it is when standard (lower case accepted), else ``_OTHER``."""
    return _METHODS.get(method, OTHER_METHOD)


class RouteLabels:
    """Admits at most *max_routes* distinct route templates; later ones become ``_overflow``.

    Route templates come from the framework's router, so there are normally a few dozen of
    them; the cap is for custom routers that put raw paths where templates belong.
    """

    def __init__(self, max_routes: int = DEFAULT_MAX_ROUTES) -> None:
        self.max_routes = max_routes
        self._seen: set[str] = {UNMATCHED_ROUTE, OVERFLOW_ROUTE}
        #: The templates admitted so far (grows under the lock, read without it).
        self.admitted: set[str] = self._seen
        self._lock = threading.Lock()

    def __call__(self, template: str | None) -> str:
        if template is None:
            return UNMATCHED_ROUTE
        if template in self._seen:
            return template
        with self._lock:
            if len(self._seen) - 2 >= self.max_routes:
                return OVERFLOW_ROUTE
            self._seen.add(template)
        return template
