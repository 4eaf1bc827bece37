"""Flask: one call wraps the app in :class:`obs.wsgi.ObservabilityMiddleware`.

    from obs.integrations.flask import instrument
    instrument(app)            # request ids, access log, RED metrics, /metrics

Flask drops its request object from the environ before the middleware could read it, so the
integration hands the middleware what it needs on the way:

- the matched ``url_rule`` (``/items/<item_id>``), noted when Flask matches the request, by a
  subclass of the app's ``request_class`` (set ``app.request_class`` before ``instrument()``);
- the exception Flask turned into its 500 response (so ``error_type`` names the exception class
  instead of ``500``), from the ``got_request_exception`` signal.

Both are cheaper than the ``teardown_request`` function they replace, which Flask runs through
``ensure_sync`` on every request: one Python call per request for the rule, none for the
exception unless there is one. Also serves ``/metrics``.
"""

from __future__ import annotations

import operator
from typing import Any

from obs.http.options import check_metrics_path
from obs.prometheus.exposition import render
from obs.wsgi import EXCEPTION_KEY, ROUTE_KEY, ObservabilityMiddleware

__all__ = ["instrument"]


def _note_rule(request: Any, rule: Any) -> None:
    request._obs_url_rule = rule
    if rule is not None:
        request.environ[ROUTE_KEY] = rule.rule


def _observed(request_class: type[Any]) -> type[Any]:
    """A subclass of the app's *request_class* whose matched rule reaches the middleware.

    Flask writes ``url_rule`` once per request, when it matches the rule: the write also puts
    the template in the environ. Flask reads it several times: the getter is C code
    (``attrgetter``), so a read costs no Python call, and it is ``None`` until a rule matched.
    """
    namespace = {
        "url_rule": property(operator.attrgetter("_obs_url_rule"), _note_rule),
        "_obs_url_rule": None,
        "__module__": __name__,
    }
    return type(request_class.__name__, (request_class,), namespace)


def _check_flask_app(app: Any, flask_class: type[Any]) -> None:
    if not isinstance(app, flask_class):
        hint = (
            "for an ASGI app use obs.asgi.ObservabilityMiddleware(app)"
            if callable(app)
            else "give the Flask() object"
        )
        raise TypeError(
            f"instrument(app=<{type(app).__module__}.{type(app).__qualname__}>): not a Flask "
            f"app; {hint}."
        )


def instrument(app: Any, *, metrics_path: str | None = "/metrics", **options: Any) -> Any:
    """Observe every request of the Flask *app*; return it.

    :param metrics_path: where to serve the metrics (``None`` for nowhere).
    :param options: passed to :class:`obs.wsgi.ObservabilityMiddleware` (``registry``,
        ``access_log``, ``record_body_sizes``...).
    """
    try:
        import flask
    except ImportError as exc:  # pragma: no cover - the caller has a Flask app
        raise ImportError("obs.integrations.flask needs Flask: pip install flask") from exc
    _check_flask_app(app, flask.Flask)
    check_metrics_path(metrics_path)

    def note_exception(sender: Any, exception: BaseException, **extra: Any) -> None:
        flask.request.environ[EXCEPTION_KEY] = exception

    app.request_class = _observed(app.request_class)
    flask.got_request_exception.connect(note_exception, app, weak=False)
    app.wsgi_app = ObservabilityMiddleware(app.wsgi_app, **options)
    if metrics_path is not None:
        registry = options.get("registry")

        def metrics() -> Any:
            headers = flask.request.headers
            body, out = render(registry, headers.get("Accept"), headers.get("Accept-Encoding"))
            return flask.Response(body, headers=out)

        app.add_url_rule(metrics_path, "obs_metrics", metrics, methods=["GET", "HEAD"])
    return app
