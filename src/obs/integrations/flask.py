"""Flask: wrap the app in :class:`obs.wsgi.ObservabilityMiddleware`, as an extension.

    from obs.integrations.flask import Observability
    Observability(app)                  # request ids, access log, RED metrics, /metrics

    observability = Observability()     # app factories: create once, init each app
    def create_app():
        app = Flask(__name__)
        observability.init_app(app)
        return app

``instrument(app)`` is the one-call form (it returns the app). Both are idempotent: an app
already observed is left as it is, so a factory or a test that runs twice never wraps twice
nor registers ``/metrics`` twice.

Flask drops its request object from the environ before the middleware could read it, so the
integration hands the middleware what it needs on the way:

- the matched ``url_rule`` (``/items/<item_id>``), noted when Flask matches the request, by a
  subclass of the app's ``request_class`` (set ``app.request_class`` before ``init_app()``);
- the exception Flask turned into its 500 response (so ``error_type`` names the exception class
  instead of ``500``), from the ``got_request_exception`` signal; it is marked as reported
  there, so Flask's own ``Exception on /boom [GET]`` line names the request instead of
  repeating the traceback the access line carries.

Both are cheaper than the ``teardown_request`` function they replace, which Flask runs through
``ensure_sync`` on every request: one Python call per request for the rule, none for the
exception unless there is one. ``/metrics`` is served by the same core as every obs endpoint
(:class:`obs.prometheus.exposition.MetricsEndpoint`), with optional basic auth.
"""

from __future__ import annotations

from typing import Any

from obs.http.options import check_metrics_path
from obs.integrations.url_rules import note_exception, observed_request_class
from obs.prometheus.exposition import MetricsEndpoint
from obs.wsgi import EXCEPTION_KEY, OBSERVATION_KEY, ROUTE_KEY, ObservabilityMiddleware

__all__ = ["Observability", "instrument"]

#: The key of ``app.extensions`` holding the :class:`Observability` that observes the app.
EXTENSION_KEY = "obs"
_METRICS_ENDPOINT = "obs_metrics"


def _note_exception(sender: Any, exception: BaseException, **extra: Any) -> None:
    import flask

    note_exception(flask.request.environ, exception, EXCEPTION_KEY, OBSERVATION_KEY)


class Observability:
    """The Flask extension: ``Observability(app)``, or ``Observability()`` then
    ``init_app(app)`` for each app an app factory makes.

    :param metrics_path: where to serve the metrics (``None`` for nowhere).
    :param metrics_username: with *metrics_password*, scrapes of *metrics_path* need HTTP
        basic auth, as with :func:`obs.wsgi.make_metrics_app`.
    :param options: passed to :class:`obs.wsgi.ObservabilityMiddleware` (``registry``,
        ``access_log``, ``record_body_sizes``...); the metrics route serves that ``registry``.
    """

    def __init__(
        self,
        app: Any = None,
        *,
        metrics_path: str | None = "/metrics",
        metrics_username: str | None = None,
        metrics_password: str | None = None,
        **options: Any,
    ) -> None:
        check_metrics_path(metrics_path)
        self.metrics_path = metrics_path
        self.options = options
        # Checked here, where the credentials are given, not at the first scrape.
        self.endpoint = MetricsEndpoint(
            options.get("registry"), username=metrics_username, password=metrics_password
        )
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Any) -> None:
        """Observe every request of the Flask *app*; an app already observed is left alone."""
        try:
            import flask
        except ImportError as exc:  # pragma: no cover - the caller has a Flask app
            raise ImportError("obs.integrations.flask needs Flask: pip install flask") from exc
        _check_flask_app(app, flask.Flask)
        if EXTENSION_KEY in app.extensions:
            return
        app.extensions[EXTENSION_KEY] = self
        app.request_class = observed_request_class(
            app.request_class, "environ", ROUTE_KEY, __name__
        )
        flask.got_request_exception.connect(_note_exception, app, weak=False)
        app.wsgi_app = ObservabilityMiddleware(app.wsgi_app, **self.options)
        if self.metrics_path is not None:
            app.add_url_rule(
                self.metrics_path, _METRICS_ENDPOINT, self._metrics, methods=["GET", "HEAD"]
            )

    def _metrics(self) -> Any:
        import flask

        headers = flask.request.headers
        scrape = self.endpoint.answer(
            flask.request.method,
            headers.get("Accept"),
            headers.get("Accept-Encoding"),
            headers.get("Authorization"),
        )
        return flask.Response(scrape.body, status=scrape.status, headers=scrape.headers)


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


def instrument(
    app: Any,
    *,
    metrics_path: str | None = "/metrics",
    metrics_username: str | None = None,
    metrics_password: str | None = None,
    **options: Any,
) -> Any:
    """Observe every request of the Flask *app* (see :class:`Observability`); return it.

    Idempotent: a second call on the same app changes nothing.
    """
    import flask

    _check_flask_app(app, flask.Flask)  # here too: Observability(None) means "no app yet"
    Observability(
        app,
        metrics_path=metrics_path,
        metrics_username=metrics_username,
        metrics_password=metrics_password,
        **options,
    )
    return app
