"""What Flask and Quart share (same request model, one by WSGI and one by ASGI): their matched
``url_rule`` lives on the request object only, and their 500 for a view's exception is their own.

Both integrations hand these to the middleware through the request's environ (Flask) or scope
(Quart), under the keys the middlewares read (``obs.wsgi``/``obs.asgi`` ``ROUTE_KEY``,
``EXCEPTION_KEY`` and ``OBSERVATION_KEY``: the same strings in both).
"""

from __future__ import annotations

import operator
from collections.abc import MutableMapping
from typing import Any

from obs.logs.pipeline import mark_reported


def observed_request_class(
    request_class: type[Any], mapping: str, route_key: str, module: str
) -> type[Any]:
    """A subclass of *request_class* whose matched rule reaches the middleware: the rule's
    template goes to ``request.<mapping>[route_key]`` (``environ`` or ``scope``).

    The framework writes ``url_rule`` once per request, when it matches the rule, and reads it
    several times: the getter is C code (``attrgetter``), so a read costs no Python call, and it
    is ``None`` until a rule matched.
    """
    carrier = operator.attrgetter(mapping)

    def note_rule(request: Any, rule: Any) -> None:
        request._obs_url_rule = rule
        if rule is not None:
            carrier(request)[route_key] = rule.rule

    namespace = {
        "url_rule": property(operator.attrgetter("_obs_url_rule"), note_rule),
        "_obs_url_rule": None,
        "__module__": module,
    }
    return type(request_class.__name__, (request_class,), namespace)


def note_exception(
    mapping: MutableMapping[str, Any],
    exception: BaseException,
    exception_key: str,
    observation_key: str,
) -> None:
    """Note the exception the framework answered with its 500 where the middleware reads it.
    The framework logs it next ("Exception on /boom [GET]", its app.logger): when the access line
    will carry the traceback, that line names the request instead of repeating it."""
    mapping[exception_key] = exception
    observation = mapping.get(observation_key)
    if observation is not None and observation.observer.writes_access_line(observation.path):
        mark_reported(exception, observation.request_id)
