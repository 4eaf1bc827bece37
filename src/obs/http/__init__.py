"""Framework-neutral request observation, shared by every adapter (:mod:`obs.asgi`,
:mod:`obs.wsgi`, :mod:`obs.django`); imports no web framework.

- :mod:`.observer`: :class:`HttpObserver`, what a middleware resolves once (settings, metric
  children, label bounds, the access log);
- :mod:`.observation`: :class:`RequestObservation`, one request: begin, fail, cancel, stop the
  clock, finish; the only place that binds and restores the request's log context;
- :mod:`.access_line`: the access line's fields, sampling and query masking;
- :mod:`.labels`: bounded ``http_request_method`` and ``http_route`` values;
- :mod:`.ids`: request ids and W3C trace context;
- :mod:`.describe`: what the access line says about a request, from an ASGI scope or a
  CGI-style dict (a WSGI environ, Django's ``META``).
"""
