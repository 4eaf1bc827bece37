"""Bounded label values: route templates and methods that can never explode cardinality."""

from __future__ import annotations

import threading
from typing import Any

from obs.metrics import KNOWN_METHODS, OTHER_METHOD, OVERFLOW_ROUTE, UNMATCHED_ROUTE

DEFAULT_MAX_ROUTES = 500

#: Each standard method (and its lower-case spelling) to its label.
STANDARD_METHODS = {m: m for m in KNOWN_METHODS} | {m.lower(): m for m in KNOWN_METHODS}


def method_label(method: str) -> str:
    """The method as it is when standard (lower case accepted), else ``_OTHER``."""
    return STANDARD_METHODS.get(method, OTHER_METHOD)


class RouteLabels:
    """Admits at most *max_routes* distinct route templates; later ones become ``_overflow``.

    Route templates come from the framework's router, so there are normally a few dozen of
    them; the cap is for custom routers that put raw paths where templates belong.
    """

    def __init__(
        self, max_routes: int = DEFAULT_MAX_ROUTES, known: frozenset[str] = frozenset()
    ) -> None:
        self.max_routes = max_routes
        # *known*: the templates other processes recorded (multiprocess mode, read at start):
        # admitted again freely, and counted against the cap, so recycled workers share it.
        self._seen: set[str] = {UNMATCHED_ROUTE, OVERFLOW_ROUTE, *known}
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


#: The ``http_response_status_code`` of a status outside 100-599 (0 when nothing was sent,
#: or a custom server's nonsense): one value, so such statuses cannot add series.
OTHER_STATUS = "_OTHER"
#: The ``error_type`` of the catch-all label set, once the label-set cap is reached.
OVERFLOW_ERROR = "_overflow"


def status_label(status: int) -> str:
    """The status as a label value: itself within 100-599, else :data:`OTHER_STATUS`."""
    return str(status) if 100 <= status <= 599 else OTHER_STATUS


class LabelSets:
    """Bounds the label sets ``(method, route, status, error_type)`` of the duration histogram
    to *max_label_sets*, whatever varies: routes, methods, statuses or error types.

    Past the cap, a new set becomes ``(method, _overflow, status, error_type)`` if that set
    exists already, else one of at most ten catch-all sets ``(_OTHER, _overflow, <class>xx,
    "" or _overflow)``: the status class and whether it was an error survive, nothing else.
    """

    def __init__(
        self, max_label_sets: int, known: frozenset[tuple[str, ...]] = frozenset()
    ) -> None:
        self.max_label_sets = max_label_sets
        #: The sets other processes recorded (multiprocess mode, read at start): admitted
        #: again freely, and counted against the cap, so recycled workers share it.
        self.known = known
        self._known_used: set[tuple[str, ...]] = set()

    def admit(
        self, key: tuple[str, str, str, str], existing: dict[tuple[str, str, str, str], Any]
    ) -> tuple[str, str, str, str]:
        """The key to record *key* under, given the sets *existing* so far."""
        known = self.known
        if key in known:
            self._known_used.add(key)
            return key
        if len(existing) - len(self._known_used) + len(known) < self.max_label_sets:
            return key
        method, _, status, error_type = key
        folded = (method, OVERFLOW_ROUTE, status, error_type)
        if folded in existing:
            return folded
        status_class = status[0] + "xx" if status != OTHER_STATUS else OTHER_STATUS
        return (OTHER_METHOD, OVERFLOW_ROUTE, status_class, OVERFLOW_ERROR if error_type else "")
