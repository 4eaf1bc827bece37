"""One request as an adapter sees it: begin, fail, cancel, stop the clock, settle.

An adapter makes a :class:`RequestObservation` when a request arrives (it starts the clock,
counts the request as active and binds its ids for logging), fills in what it learns (status,
bytes, route), and closes it with :meth:`RequestObservation.settle` exactly once. This is the
only place that binds and restores the request's log context.

Two ways to give a request its log context:

- ASGI: each request is a task with its own copy of the context; the ids are bound in it when
  the observation is made and reset by :meth:`RequestObservation.unbind`.
- WSGI and Django: a server thread runs request after request in one context, and a request
  runs in steps the server drives (call, iterate the body, close). Each request gets a context
  of its own (:meth:`RequestObservation.own_context`): a copy of the server's with every
  structlog key cleared and only the request's ids bound. Every step runs in it, so what the
  app binds (``bind_contextvars(user_id=...)``) stays with its request, the next request on the
  thread starts clean, and the server's own context is never changed: nothing to restore.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from typing import Any

from obs.http.ids import trace_id_from_traceparent
from obs.http.labels import STANDARD_METHODS, method_label
from obs.http.observer import ActiveSteps, HttpObserver, RunningProfile, SlowProfileHandle
from obs.http.otel import trace_id_of
from obs.logs.context import REQUEST, REQUEST_ID, TRACE_ID, clear_bound_context
from obs.logs.pipeline import ESCAPED_FROM_ATTR, mark_reported
from obs.selfreport import report_internal_error

#: Status recorded when the client went away before the response completed (nginx's choice).
CLIENT_CLOSED_REQUEST = 499

_perf_counter = time.perf_counter
#: What binding the request set: the request id's, the trace id's, the request's.
ContextTokens = (
    tuple[contextvars.Token[Any], contextvars.Token[Any] | None, contextvars.Token[Any]] | None
)
#: Where the route template is read from: ``getter(source, root)`` (see :meth:`settle`).
RouteSource = tuple[Callable[[Any, str], "str | None"], Any, str]


def request_id_of(exc: BaseException | None) -> str | None:
    """The id of the request an exception escaped from (see :meth:`RequestObservation.note_on`)."""
    value = getattr(exc, ESCAPED_FROM_ATTR, None)
    return value if isinstance(value, str) else None


def error_type_of(exc: BaseException) -> str:
    """The ``error_type`` label of an exception: its class name."""
    return type(exc).__qualname__


class RequestObservation:
    """The state of one request; closed by :meth:`settle` exactly once.

    Made when the request arrives: it starts the clock, counts the request as active and binds
    the request's ids in the current context (reset by :meth:`unbind`).
    """

    __slots__ = (
        "active", "bytes_in", "bytes_out", "client", "client_gone", "end", "error_type",
        "exception", "finished", "labels", "measured", "method", "observer", "path", "profile",
        "profile_path", "query", "raw_method", "request_id", "route", "route_source",
        "slow_profile", "start", "status", "tokens", "trace_id", "user_agent",
    )  # fmt: skip

    def __init__(
        self,
        observer: HttpObserver,
        method: str,
        path: str,
        raw_request_id: bytes | None = None,
        traceparent: bytes | None = None,
        bind_ids: bool = True,  # positional too: see obs.wsgi's call
    ) -> None:
        self.start = _perf_counter()
        self.observer = observer
        self.raw_method = method
        # A dict lookup in C before the call: 1 Python call fewer per request for the standard
        # methods (bench/instructions.py).
        self.method = label = STANDARD_METHODS.get(method) or method_label(method)
        self.path = path
        #: Extra label values (``extra_labels=``), set by the adapter from the headers.
        self.labels: tuple[str, ...] = ()
        #: How this request steps the active-requests gauge (None: not gauged).
        self.active: ActiveSteps | None = None
        # Excluded from metrics (the scrape itself, by default): decided here, one set lookup,
        # so the request is neither gauged now nor counted when it finishes.
        self.measured = not (
            path in observer.unmeasured_paths
            or (observer.unmeasured_prefixes and path.startswith(observer.unmeasured_prefixes))
        )
        if self.measured:
            try:
                # The cached steps read here, not through active_steps(): one call fewer per
                # request (bench/instructions.py: about 120 instructions).
                active = observer.active_children.get(label) or observer.active_steps(label)
                active[0]()
                self.active = active
            except Exception as exc:
                report_internal_error("metrics", exc, observer.registry)
        self.status = self.bytes_in = self.bytes_out = 0
        self.end = 0.0
        self.route: str | None = None
        #: Set by the adapter when the request arrives; read by :meth:`settle` and, for the
        #: lines logged while the request runs, by :meth:`current_route`.
        self.route_source: RouteSource | None = None
        self.error_type = self.query = ""
        self.exception: BaseException | None = None
        self.finished = False
        #: The client went away before the last body byte (the server said so).
        self.client_gone = False
        self.client: str | None = None
        self.user_agent: str | None = None
        self.profile: RunningProfile | None = None
        self.profile_path: str | None = None
        self.request_id: str | None = None
        self.trace_id: str | None = None
        self.tokens: ContextTokens = None
        slow = observer.slow_profiler
        self.slow_profile: SlowProfileHandle | None = None if slow is None else slow.begin()
        if not observer.request_ids:
            return
        self.request_id = request_id = (
            observer.new_request_id()
            if raw_request_id is None
            else observer.request_id_from(raw_request_id)
        )
        lookup = observer.span_lookup
        if lookup is not None:  # OpenTelemetry is installed: its span wins
            try:
                span = lookup[0]().get(lookup[1])  # two C calls, no function of ours
                if span is not None:
                    self.trace_id = trace_id_of(span)
            except Exception as exc:
                report_internal_error("opentelemetry", exc, observer.registry)
        if traceparent is not None and self.trace_id is None:
            self.trace_id = trace_id_from_traceparent(traceparent)
        if bind_ids:  # else the adapter runs the request in :meth:`own_context`
            trace = None if self.trace_id is None else TRACE_ID.set(self.trace_id)
            self.tokens = (REQUEST_ID.set(request_id), trace, REQUEST.set(self))

    # -- the request's log context -------------------------------------------------------------

    def unbind(self) -> None:
        """Reset the ids bound when the request arrived (in the same task or thread; elsewhere
        a no-op)."""
        tokens = self.tokens
        if tokens is None:
            return
        self.tokens = None
        # Reset here rather than through a helper: the ASGI adapter calls this once per request
        # (bench/instructions.py: a call fewer, about 400 instructions).
        try:
            REQUEST_ID.reset(tokens[0])
            if tokens[1] is not None:
                TRACE_ID.reset(tokens[1])
            REQUEST.reset(tokens[2])
        except ValueError:  # a token from another context: nothing of ours is bound here
            pass

    def own_context(self) -> contextvars.Context:
        """A context for this request alone: the current one with every structlog key cleared
        and only this request's ids bound. Run each step of the request in it
        (``context.run(app, ...)``); the caller's context is left as it was."""
        context = contextvars.copy_context()
        context.run(self._bind_alone)
        return context

    def _bind_alone(self) -> None:
        clear_bound_context()
        if self.request_id is not None:  # no tokens to keep: the context is the request's own
            if self.trace_id is not None:
                TRACE_ID.set(self.trace_id)
            REQUEST_ID.set(self.request_id)
            REQUEST.set(self)

    def note_on(self, exc: BaseException) -> None:
        """Tag an exception that leaves the request with its id, for the server that logs it
        after obs is done (gunicorn's "Error handling request"): an attribute read by
        :func:`request_id_of`, and a note in its traceback for every other server."""
        request_id = self.request_id
        if request_id is None or request_id_of(exc) is not None:
            return
        try:
            setattr(exc, ESCAPED_FROM_ATTR, request_id)
            exc.add_note(f"request_id: {request_id}")
        except Exception:  # an exception class that refuses attributes: only the note is lost
            pass

    # -- what happened ---------------------------------------------------------------------------

    def start_profile(self, presented_token: str | None) -> str | None:
        """Start an on-demand profile if the token allows it; return its id for the header."""
        profiler = self.observer.profiler
        if profiler is None or presented_token is None or self.request_id is None:
            return None
        client = None if self.client is None else self.client.rpartition(":")[0] or self.client
        self.profile = profiler.start(presented_token, self.request_id, client)
        return None if self.profile is None else self.profile.profile_id

    def fail(self, exc: BaseException) -> None:
        """Note that the handler raised *exc* (before or after the response started)."""
        self.exception = exc
        self.error_type = error_type_of(exc)
        if not self.status:
            self.status = 500

    def fail_late(self, exc: BaseException) -> None:
        """Note that the app raised after the request was finished (a background task that runs
        after the response): its access line is written, so the exception is counted under the
        request's route and tagged for the line the server writes about it (:meth:`note_on`)."""
        self.note_on(exc)
        if self.measured:
            observer = self.observer
            try:
                observer.count_exception(observer.route_label(self.route), error_type_of(exc))
            except Exception as error:
                report_internal_error("metrics", error, observer.registry)

    def cancel(self, exc: BaseException) -> None:
        """Note that the request was cancelled from outside (the client went away, the server
        is stopping): 499 unless the last body byte was already sent."""
        self.error_type = error_type_of(exc)
        if not self.end:
            self.status = CLIENT_CLOSED_REQUEST

    def has_body(self) -> bool:
        """Whether the response has a body a client could miss (RFC 9110: none for HEAD, 1xx,
        204, 304): a server that stops a body-less response early lost the client nothing."""
        status = self.status
        return self.raw_method != "HEAD" and status >= 200 and status not in (204, 304)

    def went_away(self) -> None:
        """Note that the client went away before the last body byte: the status is 499 whatever
        the response began with, and the bytes are those actually sent."""
        if not self.end:
            self.status = CLIENT_CLOSED_REQUEST

    def current_route(self) -> str | None:
        """The ``http_route`` label of the request so far, for a line logged while it runs:
        ``None`` until the framework has routed it. Never raises. The template found is kept,
        so the request's further lines do not route again (:meth:`settle` reads it afresh)."""
        route = self.route
        try:
            if route is None:
                source = self.route_source
                if source is None:
                    return None
                route = self.route = source[0](source[1], source[2])
                if route is None:
                    return None
            return self.observer.route_label(route)
        except Exception:  # a getter that fails now may not once routed: settle() reports it
            return None

    def complete(self) -> bool:
        """The last body byte was sent: stop the clock; return whether to finish right away.

        A 5xx is finished later, when the app returns or raises, so that an exception that
        follows the error response (Starlette sends its 500, then re-raises) is recorded.
        """
        self.end = _perf_counter()
        return self.status < 500

    def settle(self, handled: BaseException | None = None) -> None:
        """The request is over: note the exception a framework turned into its 5xx
        (*handled*), read the route from :attr:`route_source` (a failing getter is reported,
        never raised; without a source :attr:`route` is kept as set), record the metrics and
        write the access line (the clock stops at :meth:`complete`, or now). Every adapter ends
        a request here, exactly once: later calls do nothing. Never raises.

        One method rather than a route step and a recording step: a call fewer per request
        (bench/instructions.py: about 600 instructions)."""
        if self.finished:
            return
        if handled is not None and self.exception is None and self.status >= 500:
            self.fail(handled)
        if self.client_gone:
            self.went_away()
        source = self.route_source
        if source is not None:
            try:
                self.route = source[0](source[1], source[2])
            except Exception as exc:
                report_internal_error("route template", exc, self.observer.registry)
        self.finished = True
        duration = (self.end or _perf_counter()) - self.start
        if self.raw_method == "HEAD":
            self.bytes_out = 0  # servers drop a HEAD response's body; nothing was sent
        observer = self.observer
        route = ""
        try:
            active = self.active
            if active is not None:
                try:
                    active[1]()
                except IndexError:  # the gauge was set() meanwhile: no unit left to take
                    active[2].dec()
            if self.profile is not None:
                self.profile_path = self.profile.stop()
            if self.measured:
                template = self.route
                if template is None or template not in observer.admitted_routes:  # route_label()
                    route = observer.route_labels(template)
                else:
                    route = template
                observer.record(self, route, duration)
            if self.slow_profile is not None:
                slow_path = self.slow_profile.finish(duration, route, self.request_id)
                self.profile_path = self.profile_path or slow_path
        except Exception as exc:
            report_internal_error("metrics", exc, observer.registry)
        access_log = observer.access_log
        if access_log is not None:
            try:
                written = access_log.write(
                    self, route or observer.route_label(self.route), duration
                )
                if written and self.exception is not None:
                    # The traceback is in this access line: the server's own line about the
                    # same exception names the request instead of repeating it.
                    mark_reported(self.exception, self.request_id)
            except Exception as exc:
                report_internal_error("access log", exc, observer.registry)
