"""A remote client guessing the profile token, or sending basic auth as RFC 7617 allows."""

from __future__ import annotations

import base64
import io
import json
import time

import pytest
from prometheus_client import CollectorRegistry

import obs
from obs.config import Settings
from obs.exceptions import ConfigError
from obs.prometheus.exposition import authorized, basic_authorization

TOKEN = "the-right-profile-token-0123"


def rejections(registry: CollectorRegistry, reason: str) -> float:
    return sum(
        s.value
        for metric in registry.collect()
        for s in metric.samples
        if s.name == "obs_profile_token_rejections_total" and s.labels.get("reason") == reason
    )


@pytest.mark.parametrize("token", ["a", "", "   ", "fifteen-chars!!"])
def test_a_short_or_empty_token_is_refused_at_start_up(token: str) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env({"OBS_PROFILE_TOKEN": token})
    with pytest.raises(ConfigError):
        Settings.from_env({}, profile_token=token)


def test_guessing_is_counted_logged_once_and_locked_out(tmp_path: object) -> None:
    from obs.profiling.request import RequestProfiler

    registry = CollectorRegistry()
    out = io.StringIO()
    obs.configure_logging(log_format="json", stream=out, registry=registry)
    profiler = RequestProfiler(TOKEN, str(tmp_path), registry=registry)
    started = time.monotonic()
    accepted = 0
    for i in range(2000):
        profile = profiler.start(f"guess-{i:020d}", f"r{i}", "203.0.113.7")
        accepted += profile is not None
    assert time.monotonic() - started < 2.0 and accepted == 0
    wrong, locked = rejections(registry, "wrong"), rejections(registry, "locked")
    assert wrong + locked == 2000  # every attempt counted
    assert wrong <= 10, "after a few failures the guesses are no longer even compared"
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len([x for x in lines if x["event"] == "profile token rejected"]) == 1
    # Locked out: even the right token is refused now, from that client only.
    assert profiler.start(TOKEN, "r-right", "203.0.113.7") is None
    other = profiler.start(TOKEN, "r-other", "198.51.100.1")
    assert other is not None
    other.stop()
    assert TOKEN not in out.getvalue()


@pytest.mark.parametrize("scheme", [b"Basic", b"basic", b"BASIC", b"bAsIc"])
def test_basic_auth_scheme_is_case_insensitive(scheme: bytes) -> None:
    expected = basic_authorization("prom", "s3cret")
    credentials = base64.b64encode(b"prom:s3cret")
    assert authorized(expected, scheme + b" " + credentials)
    assert not authorized(expected, scheme + b" " + base64.b64encode(b"prom:wrong"))
    assert not authorized(expected, b"Bearer " + credentials)
    assert not authorized(expected, credentials)
    assert not authorized(expected, None)


def test_redaction_settings_add_to_the_defaults() -> None:
    from obs.config import DEFAULT_REDACT_KEYS

    added = Settings.from_env({"OBS_REDACT_KEYS": "ssn"})
    assert added.redact_keys == DEFAULT_REDACT_KEYS | {"ssn"}
    only = Settings.from_env({"OBS_REDACT_KEYS": "ssn", "OBS_REDACT_DEFAULTS": "false"})
    assert only.redact_keys == {"ssn"}
    for empty in ("", " , "):
        with pytest.raises(ConfigError, match="OBS_REDACT_DEFAULTS=false"):
            Settings.from_env({"OBS_REDACT_KEYS": empty})
