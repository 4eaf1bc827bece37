"""One request as an adapter sees it: begin, fail, cancel, stop the clock, finish.

An adapter makes a :class:`RequestObservation` when a request arrives (it starts the clock,
counts the request as active and binds its ids for logging), fills in what it learns (status,
bytes, route), and closes it with :meth:`RequestObservation.finish` exactly once. This is the
only place that binds and restores the request's log context.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from typing import Any

from obs.http.ids import request_id_from, trace_id_from_traceparent
from obs.http.labels import method_label
from obs.http.observer import HttpObserver, RunningProfile
from obs.logs.context import REQUEST_ID, TRACE_ID
from obs.selfreport import report_internal_error

#: Status recorded when the client went away before the response completed (nginx's choice).
CLIENT_CLOSED_REQUEST = 499

_perf_counter = time.perf_counter
ContextTokens = tuple[contextvars.Token[Any], contextvars.Token[Any] | None] | None


def error_type_of(exc: BaseException) -> str:
    """The ``error_type`` label of an exception: its class name."""
    return type(exc).__qualname__


class RequestObservation:
    """The state of one request; closed by :meth:`finish` exactly once.

    Made when the request arrives: it starts the clock, counts the request as active and binds
    the request's ids in the current context (reset by :meth:`unbind`).
    """

    __slots__ = (
        "active", "bytes_in", "bytes_out", "client", "end", "error_type", "exception",
        "finished", "method", "observer", "path", "profile", "profile_path", "query",
        "raw_method", "request_id", "route", "start", "status", "tokens", "trace_id",
        "user_agent",
    )  # fmt: skip

    def __init__(
        self,
        observer: HttpObserver,
        method: str,
        path: str,
        raw_request_id: bytes | None = None,
        traceparent: bytes | None = None,
    ) -> None:
        self.start = _perf_counter()
        self.observer = observer
        self.raw_method = method
        self.method = label = method_label(method)
        self.path = path
        try:
            active = observer.active_child(label)
            active.inc()
            self.active = active
        except Exception as exc:
            self.active = None
            report_internal_error("metrics", exc, observer.registry)
        self.status = self.bytes_in = self.bytes_out = 0
        self.end = 0.0
        self.route: str | None = None
        self.error_type = self.query = ""
        self.exception: BaseException | None = None
        self.finished = False
        self.client: str | None = None
        self.user_agent: str | None = None
        self.profile: RunningProfile | None = None
        self.profile_path: str | None = None
        self.request_id: str | None = None
        self.trace_id: str | None = None
        self.tokens: ContextTokens = None
        if not observer.request_ids:
            return
        self.request_id = request_id_from(raw_request_id)
        if traceparent is not None:
            self.trace_id = trace_id_from_traceparent(traceparent)
        self.tokens = self.bind()

    # -- the request's log context -------------------------------------------------------------

    def bind(self) -> ContextTokens:
        """Bind this request's ids in the current context; :meth:`restore` undoes it."""
        if self.request_id is None:
            return None
        trace = None if self.trace_id is None else TRACE_ID.set(self.trace_id)
        return REQUEST_ID.set(self.request_id), trace

    @staticmethod
    def restore(tokens: ContextTokens) -> None:
        """Reset what :meth:`bind` set (in the same task or thread; elsewhere a no-op)."""
        if tokens is None:
            return
        try:
            REQUEST_ID.reset(tokens[0])
            if tokens[1] is not None:
                TRACE_ID.reset(tokens[1])
        except ValueError:  # a token from another context: nothing of ours is bound here
            pass

    def unbind(self) -> None:
        """Reset the ids bound when the request arrived."""
        self.restore(self.tokens)
        self.tokens = None

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

    def cancel(self, exc: BaseException) -> None:
        """Note that the request was cancelled or the client went away."""
        self.error_type = error_type_of(exc)
        if not self.status:
            self.status = CLIENT_CLOSED_REQUEST

    def read_route(self, getter: Callable[[Any, str], str | None], source: Any, root: str) -> None:
        """Set :attr:`route` from *getter* (scope or environ, and the mount root); a failing
        getter is reported, never raised: a route must never fail a request."""
        try:
            self.route = getter(source, root)
        except Exception as exc:
            report_internal_error("route template", exc, self.observer.registry)

    def complete(self) -> bool:
        """The last body byte was sent: stop the clock; return whether to finish right away.

        A 5xx is finished later, when the app returns or raises, so that an exception that
        follows the error response (Starlette sends its 500, then re-raises) is recorded.
        """
        self.end = _perf_counter()
        return self.status < 500

    def finish(self) -> None:
        """Record metrics and write the access line (the clock stops at :meth:`complete`, or
        now). Idempotent; never raises."""
        if self.finished:
            return
        self.finished = True
        duration = (self.end or _perf_counter()) - self.start
        if self.raw_method == "HEAD":
            self.bytes_out = 0  # servers drop a HEAD response's body; nothing was sent
        observer = self.observer
        route = ""
        try:
            if self.active is not None:
                self.active.dec()
            if self.profile is not None:
                self.profile_path = self.profile.stop()
            route = observer.route_label(self.route)
            observer.record(self, route, duration)
        except Exception as exc:
            report_internal_error("metrics", exc, observer.registry)
        access_log = observer.access_log
        if access_log is not None:
            try:
                access_log.write(self, route or observer.route_label(self.route), duration)
            except Exception as exc:
                report_internal_error("access log", exc, observer.registry)
