"""One request, profiled on demand, in process (pyinstrument).

When ``OBS_PROFILE_TOKEN`` is set, a request carrying ``X-Obs-Profile: <token>`` is profiled and
written under ``OBS_PROFILE_DIR`` as ``<request id>.speedscope.json`` and ``<request id>.html``.
The middleware calls :meth:`RequestProfiler.start` before the app runs and
:meth:`ActiveProfile.stop` after the response completed, in the same task or thread.

Guarantees: off unless a token is configured; the token has at least 16 characters and is
compared in constant time; a wrong one is counted in ``obs_profile_token_rejections_total``,
logged at most once a minute, and a client that keeps guessing is locked out with a doubling
back-off (its attempts are refused unchecked, so guessing gets slower, while nothing blocks the
event loop); one profile at a time (others are served unprofiled); at most ``max_duration``
seconds of samples; at most ``max_files`` profiles kept; nothing here ever raises into the
request.

Async handlers are profiled with pyinstrument's *strict* async mode: only this request's task is
recorded, and the time other requests' tasks spend on the event loop while it awaits shows as
``[out-of-context]``, so concurrent requests never mix into one profile. Sync handlers that the
framework runs in a thread pool are caught by :class:`~obs.profiling.threads.ThreadSampler`, which
samples the other busy threads while a profile started on an event loop is running (see there for
its limitation under concurrency).
"""

from __future__ import annotations

import asyncio
import hmac
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from obs.config import MIN_PROFILE_TOKEN_LENGTH
from obs.exceptions import ConfigError
from obs.profiling.session import with_records, write_session
from obs.profiling.storage import safe_stem, unique_stem
from obs.profiling.threads import ThreadSampler
from obs.selfreport import report_internal_error

if TYPE_CHECKING:
    from obs.config import Settings

COMPONENT = "request profiling"
#: pyinstrument's sampling interval for request profiles, in seconds.
INTERVAL = 0.001
#: Wrong tokens from one client (within :data:`FAILURE_WINDOW` seconds) before it is locked out.
FREE_FAILURES = 5
FAILURE_WINDOW = 60.0
#: The first lock-out, in seconds; each further failure doubles it, up to :data:`MAX_LOCKOUT`.
FIRST_LOCKOUT = 1.0
MAX_LOCKOUT = 60.0
#: Seconds between two log lines about rejected tokens (the metric counts every one).
REJECTION_LOG_INTERVAL = 60.0
#: Clients remembered at most (the oldest are forgotten first).
MAX_CLIENTS = 10_000


class TokenGuard:
    """Counts wrong profile tokens and locks out a client that keeps guessing.

    After :data:`FREE_FAILURES` wrong tokens from one client within :data:`FAILURE_WINDOW`
    seconds, that client's next attempts are refused without being compared for a back-off that
    starts at :data:`FIRST_LOCKOUT` and doubles with each further failure: 2,000 guesses in two
    seconds test a handful of tokens, not 2,000. Refusing (rather than sleeping) keeps an event
    loop serving everyone else.
    """

    def __init__(self, registry: Any = None) -> None:
        self._lock = threading.Lock()
        # client -> (failures in the window, window start, locked until, current lock-out)
        self._clients: dict[str, tuple[int, float, float, float]] = {}
        self._last_log = -REJECTION_LOG_INTERVAL
        self._registry = registry

    def locked_out(self, client: str, now: float) -> bool:
        state = self._clients.get(client)
        return state is not None and now < state[2]

    def reject(self, client: str, now: float, reason: str) -> None:
        """Count one rejected attempt of *client* (``reason``: ``wrong`` or ``locked``)."""
        with self._lock:
            failures, since, until, lockout = self._clients.pop(client, (0, now, 0.0, 0.0))
            if now - since > FAILURE_WINDOW and now >= until:
                failures, since, lockout = 0, now, 0.0
            failures += 1
            if failures > FREE_FAILURES:
                lockout = min(MAX_LOCKOUT, lockout * 2 if lockout else FIRST_LOCKOUT)
                until = now + lockout
            self._clients[client] = (failures, since, until, lockout)
            if len(self._clients) > MAX_CLIENTS:
                del self._clients[next(iter(self._clients))]
            log_now = now - self._last_log >= REJECTION_LOG_INTERVAL
            if log_now:
                self._last_log = now
        try:
            from obs.metrics import get_metrics

            get_metrics(self._registry).profile_token_rejections.labels(reason).inc()
        except Exception as exc:
            report_internal_error(COMPONENT, exc)
        if log_now:
            _log_rejection(client, reason, failures)


def _log_rejection(client: str, reason: str, failures: int) -> None:
    try:
        from obs.logs.pipeline import get_logger

        get_logger("obs.profiling").warning(
            "profile token rejected",
            client=client,
            reason=reason,
            failures=failures,
            note="further rejections are counted in obs_profile_token_rejections_total and "
            f"logged at most every {REJECTION_LOG_INTERVAL:.0f}s",
        )
    except Exception as exc:
        report_internal_error(COMPONENT, exc)


def check_token(token: str | None) -> bytes | None:
    """*token* as compared, or ``None`` when profiling is off; a token that is empty or shorter
    than :data:`~obs.config.MIN_PROFILE_TOKEN_LENGTH` is a :class:`ConfigError`."""
    if token is None:
        return None
    if len(token.strip()) < MIN_PROFILE_TOKEN_LENGTH:
        raise ConfigError(
            f"the profile token has {len(token.strip())} characters; use at least "
            f"{MIN_PROFILE_TOKEN_LENGTH} (python -c 'import secrets; "
            "print(secrets.token_urlsafe(24))'), or None to turn request profiling off."
        )
    return token.encode("utf-8", "backslashreplace")


class RequestProfiler:
    """Decides which requests are profiled and owns the one-at-a-time slot.

    ``enabled`` is a plain attribute, ``False`` when no token is configured, so a middleware can
    skip all profiling work with one attribute read.
    """

    def __init__(
        self,
        token: str | None,
        directory: str | os.PathLike[str],
        *,
        max_duration: float = 30.0,
        max_files: int = 50,
        registry: Any = None,
    ) -> None:
        self._token = check_token(token)
        self.enabled: bool = self._token is not None
        self.guard = TokenGuard(registry)
        self.directory = Path(directory)
        self.max_duration = max_duration
        self.max_files = max_files
        self._lock = threading.Lock()
        self._active: ActiveProfile | None = None

    @classmethod
    def from_settings(cls, settings: Settings, registry: Any = None) -> RequestProfiler:
        """A profiler configured by ``OBS_PROFILE_TOKEN`` and ``OBS_PROFILE_DIR`` (rejections
        counted in *registry*, default the global one)."""
        return cls(settings.profile_token, settings.profile_dir, registry=registry)

    def start(
        self, presented_token: str | None, request_id: str, client: str | None = None
    ) -> ActiveProfile | None:
        """Begin profiling this request if *presented_token* matches and no profile is running.

        *client* (its address) keys the lock-out of :class:`TokenGuard`. Returns ``None``
        otherwise (the request is served as usual). Never raises.
        """
        if presented_token is None or self._token is None:
            return None
        try:
            who = client or "unknown"
            now = time.monotonic()
            if self.guard.locked_out(who, now):
                self.guard.reject(who, now, "locked")
                return None
            presented = presented_token.encode("utf-8", "backslashreplace")
            if not hmac.compare_digest(presented, self._token):
                self.guard.reject(who, now, "wrong")
                return None
            with self._lock:
                current = self._active
                if current is not None and not current.is_stale():
                    return None
                profile = ActiveProfile(self, request_id)
                self._active = profile
            try:
                profile._begin()
            except BaseException:
                self._release(profile)
                raise
            return profile
        except Exception as exc:
            report_internal_error(COMPONENT, exc)
            return None

    def _release(self, profile: ActiveProfile) -> None:
        with self._lock:
            if self._active is profile:
                self._active = None


class ActiveProfile:
    """A request profile in progress; call :meth:`stop` once the response is complete."""

    def __init__(self, owner: RequestProfiler, request_id: str) -> None:
        self.owner = owner
        self.request_id = request_id
        stem = safe_stem(request_id, fallback="request")
        #: The stem of the files written; the middleware reports it in ``X-Obs-Profile-Id``.
        self.profile_id: str = unique_stem(owner.directory, stem)
        self.started = time.monotonic()
        self._profiler: Any = None
        self._sampler: ThreadSampler | None = None
        self._stopped = False

    def is_stale(self) -> bool:
        """True once the profile ran for twice its cap: a request that never ended frees the slot."""
        return time.monotonic() - self.started > 2 * self.owner.max_duration

    def _begin(self) -> None:
        from pyinstrument import Profiler

        profiler = Profiler(interval=INTERVAL, async_mode="strict")
        profiler.start(target_description=f"request {self.request_id}")
        self._profiler = profiler
        if _on_event_loop():
            # A sync handler will run in a worker thread that pyinstrument does not see.
            sampler = ThreadSampler({threading.get_ident()}, max_duration=self.owner.max_duration)
            sampler.start()
            self._sampler = sampler

    def stop(self) -> str | None:
        """Stop, write the speedscope and HTML files and free the slot.

        Returns the HTML file's path, or ``None`` if the profile could not be written (reported
        on stderr and in ``obs_internal_errors_total``). Never raises; a second call does nothing.
        """
        if self._stopped:
            return None
        self._stopped = True
        try:
            extra = self._sampler.stop() if self._sampler is not None else []
            session = self._profiler.stop()
            session = with_records(session, extra, self.owner.max_duration)
            html = write_session(
                session, self.owner.directory, self.profile_id, self.owner.max_files
            )
            return str(html)
        except Exception as exc:
            report_internal_error(COMPONENT, exc)
            return None
        finally:
            self.owner._release(self)


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
