"""Flask: one call wraps the app in :class:`obs.wsgi.ObservabilityMiddleware`.

    from obs.integrations.flask import instrument
    instrument(app)            # request ids, access log, RED metrics, /metrics

A ``teardown_request`` function hands the middleware the matched ``url_rule``
(``/items/<item_id>``) and the exception Flask turned into its 500 response (so ``error_type``
names the exception class instead of ``500``): Flask drops its request object from the environ
before the middleware could read it. Also serves ``/metrics``.
"""

from __future__ import annotations

from typing import Any

from obs.exposition import render
from obs.wsgi import EXCEPTION_KEY, ROUTE_KEY, ObservabilityMiddleware

__all__ = ["instrument"]


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

    def note_route_and_exception(exc: BaseException | None) -> None:
        # Teardown runs before Flask drops its request from the environ, even after errors;
        # *exc* is the exception Flask turned into its 500 response, if any.
        request = flask.request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup, not two
        environ = request.environ
        rule = request.url_rule
        if rule is not None:
            environ[ROUTE_KEY] = rule.rule
        if exc is not None:
            environ[EXCEPTION_KEY] = exc

    app.teardown_request(note_route_and_exception)
    app.wsgi_app = ObservabilityMiddleware(app.wsgi_app, **options)
    if metrics_path is not None:
        registry = options.get("registry")

        def metrics() -> Any:
            headers = flask.request.headers
            body, out = render(registry, headers.get("Accept"), headers.get("Accept-Encoding"))
            return flask.Response(body, headers=out)

        app.add_url_rule(metrics_path, "obs_metrics", metrics, methods=["GET", "HEAD"])
    return app
