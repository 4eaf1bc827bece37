"""Flask: one call wraps the app in :class:`obs.wsgi.ObservabilityMiddleware`.

    from obs.integrations.flask import instrument
    instrument(app)            # request ids, access log, RED metrics, /metrics

Route templates need nothing from this module (the WSGI middleware reads ``url_rule`` from the
request Flask leaves in the environ); what it adds is the exception Flask turned into its 500
response, so ``error_type`` names the exception class instead of ``500``, and a ``/metrics`` view.
"""

from __future__ import annotations

from typing import Any

from obs.exposition import render
from obs.wsgi import EXCEPTION_KEY, ObservabilityMiddleware

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

    def record_exception(sender: Any, exception: BaseException, **extra: Any) -> None:
        flask.request.environ[EXCEPTION_KEY] = exception

    flask.got_request_exception.connect(record_exception, app, weak=False)
    app.wsgi_app = ObservabilityMiddleware(app.wsgi_app, **options)
    if metrics_path is not None:
        registry = options.get("registry")

        def metrics() -> Any:
            headers = flask.request.headers
            body, out = render(registry, headers.get("Accept"), headers.get("Accept-Encoding"))
            return flask.Response(body, headers=out)

        app.add_url_rule(metrics_path, "obs_metrics", metrics, methods=["GET", "HEAD"])
    return app
