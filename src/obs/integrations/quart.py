"""Quart: ``instrument(app)`` wraps ``app.asgi_app`` in :class:`obs.asgi.ObservabilityMiddleware`.

    from obs.integrations.quart import instrument
    app = instrument(Quart(__name__))   # request ids, access log, RED metrics, /metrics

Quart, like Flask, keeps the matched ``url_rule`` on its request object only, and answers a
view's exception with its own 500. So, as :mod:`obs.integrations.flask` does:

- the rule (``/items/<int:item_id>``, a blueprint's ``url_prefix`` included) is noted when Quart
  matches the request, by a subclass of the app's ``request_class`` (set ``app.request_class``
  before ``instrument()``), in the scope the middleware reads (:data:`obs.asgi.ROUTE_KEY`);
- the exception Quart turned into its 500 is put in the scope (:data:`obs.asgi.EXCEPTION_KEY`)
  from the ``got_request_exception`` signal, so ``error_type`` names its class, and its
  traceback is written once, in the access line (Quart's own line names the request).

Wrapping ``asgi_app`` rather than the app keeps the app a ``Quart`` instance (Quart's own
advice), so ``quart run`` and ``app.test_client()`` go through obs. Idempotent: an app already
observed is left as it is.
"""

from __future__ import annotations

from typing import Any

from obs.asgi import EXCEPTION_KEY, OBSERVATION_KEY, ROUTE_KEY, ObservabilityMiddleware
from obs.http.options import check_metrics_path
from obs.integrations.url_rules import note_exception, observed_request_class
from obs.prometheus.exposition import MetricsEndpoint

__all__ = ["instrument"]

#: The key of ``app.extensions`` marking an app :func:`instrument` observes.
EXTENSION_KEY = "obs"
_METRICS_ENDPOINT = "obs_metrics"


def _note_exception(sender: Any, exception: BaseException, **extra: Any) -> None:
    import quart

    scope: Any = quart.request.scope  # Quart types it as a TypedDict of ASGI's keys only
    note_exception(scope, exception, EXCEPTION_KEY, OBSERVATION_KEY)


def _check_quart_app(app: Any, quart_class: type[Any]) -> None:
    if not isinstance(app, quart_class):
        raise TypeError(
            f"instrument(app=<{type(app).__module__}.{type(app).__qualname__}>): not a Quart "
            "app; for any other ASGI app use obs.asgi.ObservabilityMiddleware(app)."
        )


def instrument(
    app: Any,
    *,
    metrics_path: str | None = "/metrics",
    metrics_username: str | None = None,
    metrics_password: str | None = None,
    **options: Any,
) -> Any:
    """Observe every request of the Quart *app*; return it.

    :param metrics_path: where to serve the metrics (``None`` for nowhere); with
        *metrics_username* and *metrics_password*, scrapes need HTTP basic auth.
    :param options: passed to :class:`obs.asgi.ObservabilityMiddleware` (``registry``,
        ``access_log``...); the metrics route serves that ``registry``.
    """
    try:
        import quart
    except ImportError as exc:  # pragma: no cover - the caller has a Quart app
        raise ImportError("obs.integrations.quart needs Quart: pip install quart") from exc
    _check_quart_app(app, quart.Quart)
    check_metrics_path(metrics_path)
    # Checked here, where the credentials are given, not at the first scrape.
    endpoint = MetricsEndpoint(
        options.get("registry"), username=metrics_username, password=metrics_password
    )
    if EXTENSION_KEY in app.extensions:
        return app
    app.extensions[EXTENSION_KEY] = endpoint
    app.request_class = observed_request_class(app.request_class, "scope", ROUTE_KEY, __name__)
    quart.got_request_exception.connect(_note_exception, app, weak=False)
    app.asgi_app = ObservabilityMiddleware(app.asgi_app, **options)
    if metrics_path is not None:

        async def metrics() -> Any:
            headers = quart.request.headers
            scrape = endpoint.answer(
                quart.request.method,
                headers.get("Accept"),
                headers.get("Accept-Encoding"),
                headers.get("Authorization"),
            )
            return quart.Response(scrape.body, status=scrape.status, headers=dict(scrape.headers))

        app.add_url_rule(metrics_path, _METRICS_ENDPOINT, metrics, methods=["GET", "HEAD"])
    return app
